using Gemma.Kernels;

namespace Gemma.Tests.Kernels;

/// <summary>
/// Reads every pool thread's own allocation counter: one work item per thread, each waiting until all have arrived
/// so that no thread takes two. The probe itself allocates nothing.
/// </summary>
internal static unsafe class WorkerAllocationProbe
{
    private struct AllocationProbe : IParallelWork
    {
        public int* Threads;
        public long* Allocated;
        public int* Arrived;
        public int Count;
        public void Execute(int index)
        {
            Interlocked.Increment(ref *Arrived);
            long deadline = Environment.TickCount64 + 10_000;
            while (Volatile.Read(ref *Arrived) < Count && Environment.TickCount64 < deadline) Thread.Yield();
            Threads[index] = Environment.CurrentManagedThreadId;
            Allocated[index] = GC.GetAllocatedBytesForCurrentThread();
        }
    }

    public static Dictionary<int, long> Probe(WorkerPool pool)
    {
        int items = pool.Threads;
        int* threads = stackalloc int[items];
        long* allocated = stackalloc long[items];
        int arrived = 0;
        var probe = new AllocationProbe { Threads = threads, Allocated = allocated, Arrived = &arrived, Count = items };
        pool.For(items, ref probe);
        var perThread = new Dictionary<int, long>();
        for (int i = 0; i < items; i++) perThread[threads[i]] = allocated[i];
        return perThread;
    }

    private struct EveryThread : IParallelWork
    {
        public Action<int> Body;
        public int* Arrived;
        public int Count;
        public void Execute(int index)
        {
            Interlocked.Increment(ref *Arrived);
            long deadline = Environment.TickCount64 + 10_000;
            while (Volatile.Read(ref *Arrived) < Count && Environment.TickCount64 < deadline) Thread.Yield();
            Body(index);
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> once on every pool thread (same barrier as <see cref="Probe"/>), e.g. to warm up
    /// per-thread kernel scratch deterministically; a nested pool call inside runs inline on that thread.
    /// </summary>
    public static void OnEveryThread(WorkerPool pool, Action<int> body)
    {
        int arrived = 0;
        var work = new EveryThread { Body = body, Arrived = &arrived, Count = pool.Threads };
        pool.For(pool.Threads, ref work);
    }
}
