using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Gemma.Kernels;

/// <summary>One unit of parallel work: <see cref="Execute"/> is called once for every index of a <see cref="WorkerPool.For{T}"/> call.</summary>
public interface IParallelWork
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
/// The calling thread participates. Items are claimed dynamically (one <see cref="Interlocked"/> increment
/// each), so every item runs on exactly one thread: a kernel that computes each output element inside one
/// item gives bit-identical results with any number of threads.
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
public sealed unsafe class WorkerPool : IDisposable
{
    // Spin iterations a parked worker polls for the next call before blocking (a few tens of µs):
    // decode issues hundreds of small calls per token, and waking a blocked thread costs ~10 µs.
    private const int SpinIterations = 2000;

    [ThreadStatic] private static bool t_insideWork;

    private readonly Lock _gate = new();
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _wake;
    // Released once per call by the last worker to finish. (SemaphoreSlim rather than ManualResetEventSlim: the latter
    // allocates its lock object the first time a waiter blocks, which would show up as a steady-state allocation.)
    private readonly SemaphoreSlim _done = new(0);

    // State of the current call; written by the caller under _gate before _generation is bumped.
    private delegate*<void*, int, void> _execute;
    private void* _context;
    private int _count;
    private int _next;
    private int _pending;
    private int _generation;
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
    /// Calls <c>work.Execute(i)</c> for every <c>i</c> in [0, <paramref name="count"/>) on the pool's threads and the
    /// calling thread, and returns when all are done. <paramref name="work"/> is shared by reference by all threads:
    /// keep per-item state in the item, not in the struct. The first exception thrown by an item is rethrown here
    /// after all threads stopped (other items may or may not have run).
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
            // `work` is a by-ref argument that may live on the heap; copy it to this frame so the raw pointer
            // handed to the workers cannot be moved by the GC while they run.
            T local = work;
            _execute = &Trampoline<T>;
            _context = Unsafe.AsPointer(ref local);
            _count = count;
            _next = 0;
            _error = null;
            // Every worker takes part in every call (idle ones find no item left), so each generation is seen
            // exactly once by each worker and _pending balances.
            _pending = _threads.Length;
            Volatile.Write(ref _generation, _generation + 1);
            foreach (SemaphoreSlim wake in _wake) wake.Release();

            Drain();
            _done.Wait();
            _execute = null;
            _context = null;
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

    /// <summary>Claims and runs items until none are left; records the first exception.</summary>
    private void Drain()
    {
        t_insideWork = true;
        try
        {
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < _count) _execute(_context, i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _next, int.MaxValue / 2); // stop the others from claiming more
        }
        finally { t_insideWork = false; }
    }

    private void WorkerLoop(int id)
    {
        int seen = 0;
        while (true)
        {
            // Spin briefly for the next generation, then park. A call seen while spinning still released the
            // semaphore: take that count without blocking (Wait(0)) so counts do not pile up during long busy
            // stretches; if the release has not landed yet, the stale count makes a later Wait() return early and
            // the generation re-check sends the worker back to sleep. Either way counts stay bounded by ~1.
            var spinner = new SpinWait();
            for (int s = 0; s < SpinIterations && Volatile.Read(ref _generation) == seen && !_disposed; s++)
                spinner.SpinOnce(sleep1Threshold: -1);
            if (Volatile.Read(ref _generation) != seen) _wake[id].Wait(0);
            while (Volatile.Read(ref _generation) == seen && !_disposed) _wake[id].Wait();
            if (_disposed) return;
            seen = Volatile.Read(ref _generation); // cannot run ahead: the caller waits for this worker's decrement
            Drain();
            if (Interlocked.Decrement(ref _pending) == 0) _done.Release();
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
