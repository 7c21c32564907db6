using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Gemma.Kernels;

/// <summary>One unit of parallel work: <see cref="Execute"/> is called once for every index of a <see cref="WorkerPool.For{T}"/> call.</summary>
internal interface IParallelWork
{
    /// <summary>Does work item <paramref name="index"/>; items may run on any thread in any order, at most once each.</summary>
    void Execute(int index);
}

/// <summary>
/// A persistent set of worker threads that kernels split their output rows over.
/// Threads are created once; between calls they spin briefly and then park on a semaphore.
/// A call hands the workers a pointer to the caller's work struct and a function pointer to a generic
/// trampoline, so no delegate, closure or Task is allocated per call.
/// <para>
/// The calling thread participates. Items are claimed dynamically (a compare-and-swap on one word holding the call's
/// generation and the next index), so every item runs on exactly one thread: a kernel that computes each output
/// element inside one item gives bit-identical results with any number of threads. The caller waits only for
/// items that were claimed, never for a worker that has not woken up yet (on a busy machine a descheduled worker
/// would otherwise stall every call by a scheduler time slice); a late worker finds the call over and goes back
/// to sleep.
/// </para>
/// <para>
/// Thread safety: one pool may be shared by several callers (e.g. generation sessions of one model);
/// concurrent <see cref="For{T}"/> calls serialize on an internal lock. A nested call from inside a work
/// item (on any pool) runs inline on the current thread instead of deadlocking.
/// </para>
/// </summary>
/// <example>
/// <code>
/// struct HeadWork : IParallelWork { public void Execute(int head) { /* attention for one head */ } }
/// var work = new HeadWork { ... };
/// pool.For(heads, ref work);
/// </code>
/// </example>
internal sealed unsafe class WorkerPool : IDisposable
{
    // Spin iterations a parked worker polls for the next call before blocking (a few tens of µs):
    // decode issues hundreds of small calls per token, and waking a blocked thread costs ~10 µs.
    private const int SpinIterations = 2000;
    // Index half of the claim word once a call is over: no index is below it.
    private const uint Closed = uint.MaxValue;

    [ThreadStatic] private static bool t_insideWork;

    private readonly Lock _gate = new();
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _wake;
    // Released once per call by whoever completes the last item. (SemaphoreSlim rather than ManualResetEventSlim:
    // the latter allocates its lock object the first time a waiter blocks — a steady-state allocation.)
    private readonly SemaphoreSlim _done = new(0);

    // State of the current call, written by the caller under _gate while the claim word is closed, then published
    // by writing the claim word (generation << 32 | next index = 0).
    private delegate*<void*, int, void> _execute;
    private void* _context;
    private int _count;
    private int _completed;
    private long _claim = Closed;
    private uint _generation;
    private volatile bool _disposed;
    private Exception? _error;

    /// <summary>Creates a pool of <paramref name="threads"/> workers including the calling thread (so threads − 1 new threads).</summary>
    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _threads = new Thread[threads - 1];
        _wake = new SemaphoreSlim[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _wake[i] = new SemaphoreSlim(0);
            int id = i;
            _threads[i] = new Thread(() => WorkerLoop(id)) { IsBackground = true, Name = $"Gemma worker {i + 1}" };
            _threads[i].Start();
        }
    }

    /// <summary>Degree of parallelism, counting the calling thread.</summary>
    public int Threads { get; }

    /// <summary>
    /// Per-thread time counters a profiler attaches (null, the default: no clock is read). Set it between calls.
    /// </summary>
    public PoolTimes? Times { get; set; }

    /// <summary>
    /// Calls <c>work.Execute(i)</c> for every <c>i</c> in [0, <paramref name="count"/>) on the pool's threads and the
    /// calling thread, and returns when all are done. <paramref name="work"/> is shared by reference by all threads:
    /// keep per-item state in the item, not in the struct. If items throw, the remaining items still run and the
    /// first exception is rethrown here.
    /// </summary>
    public void For<T>(int count, ref T work) where T : struct, IParallelWork, allows ref struct
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0) return;
        if (count == 1 || _threads.Length == 0 || t_insideWork)
        {
            RunInline(count, ref work);
            return;
        }

        lock (_gate)
        {
            PoolTimes? times = Times;
            long start = times != null ? Stopwatch.GetTimestamp() : 0;
            // `work` is a by-ref argument that may live on the heap; copy it to this frame so the raw pointer
            // handed to the workers cannot be moved by the GC while they run.
            T local = work;
            _execute = &Trampoline<T>;
            _context = Unsafe.AsPointer(ref local);
            _count = count;
            _completed = 0;
            _error = null;
            uint generation = ++_generation;
            Volatile.Write(ref _claim, (long)generation << 32);    // publish: generation, next index 0
            foreach (SemaphoreSlim wake in _wake) wake.Release();

            Drain(generation, 0);
            _done.Wait();                                          // every item has completed
            Interlocked.Exchange(ref _claim, (long)generation << 32 | Closed); // late workers claim nothing
            _execute = null;
            _context = null;
            times?.AddCall(Stopwatch.GetTimestamp() - start);
            Exception? error = _error;
            _error = null;
            if (error is not null) ExceptionDispatchInfo.Throw(error);
        }
    }

    private static void RunInline<T>(int count, ref T work) where T : struct, IParallelWork, allows ref struct
    {
        bool outer = t_insideWork;
        t_insideWork = true;
        try
        {
            for (int i = 0; i < count; i++) work.Execute(i);
        }
        finally { t_insideWork = outer; }
    }

    private static void Trampoline<T>(void* context, int index) where T : struct, IParallelWork, allows ref struct
        => Unsafe.AsRef<T>(context).Execute(index);

    /// <summary>
    /// Claims and runs items of call <paramref name="generation"/> until none are left. A claim succeeds only while
    /// the claim word still shows this generation and an index below the count; the caller changes the call's fields
    /// only after closing the word, so a stale thread can never claim an item of a later call.
    /// <paramref name="thread"/> is this thread's index in <see cref="Times"/> (0: the caller, i: worker i).
    /// </summary>
    private void Drain(uint generation, int thread)
    {
        PoolTimes? times = Times;
        t_insideWork = true;
        try
        {
            while (true)
            {
                long claim = Volatile.Read(ref _claim);
                if ((uint)(claim >> 32) != generation) return;
                uint index = (uint)claim;
                if (index >= (uint)_count) return;
                if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim) continue;
                // While this thread holds an unfinished item the call cannot end, so its fields are stable now —
                // but not after our increment below: another thread may complete the last item and the caller may
                // start the next call, so the count is read here, not after the increment.
                int count = _count;
                long t0 = 0, c0 = 0;
                if (times != null) (t0, c0) = (Stopwatch.GetTimestamp(), ThreadCpu.Nanoseconds());
                try { _execute(_context, (int)index); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                times?.AddItem(thread, Stopwatch.GetTimestamp() - t0, ThreadCpu.Nanoseconds() - c0); // before completing it
                if (Interlocked.Increment(ref _completed) == count) _done.Release();
            }
        }
        finally { t_insideWork = false; }
    }

    private void WorkerLoop(int id)
    {
        uint seen = 0;
        while (true)
        {
            // Spin briefly for the next call, then park. Every call releases each worker's semaphore once; counts left
            // by calls noticed while spinning (or slept through) are drained without blocking, and the generation is
            // re-checked before every blocking wait, so a drained release can never be missed.
            var spinner = new SpinWait();
            for (int s = 0; s < SpinIterations && Volatile.Read(ref _generation) == seen && !_disposed; s++)
                spinner.SpinOnce(sleep1Threshold: -1);
            while (Volatile.Read(ref _generation) == seen && !_disposed) _wake[id].Wait();
            while (_wake[id].Wait(0)) { }
            if (_disposed) return;
            long claim = Volatile.Read(ref _claim);
            seen = (uint)(claim >> 32);
            Drain(seen, id + 1);
        }
    }

    /// <summary>Stops the worker threads. Must not be called while a <see cref="For{T}"/> call is running.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (SemaphoreSlim s in _wake) s.Release();
        foreach (Thread t in _threads) t.Join();
        foreach (SemaphoreSlim s in _wake) s.Dispose();
        _done.Dispose();
    }
}
