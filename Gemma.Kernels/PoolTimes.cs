using System.Diagnostics;

namespace Gemma.Kernels;

/// <summary>
/// Where a <see cref="WorkerPool"/>'s threads spend their time, for profilers (<c>gemma bench --profile</c>): per thread
/// (0 = the calling thread, i = worker i) the wall time and CPU time inside work items and the items run; for the
/// calling thread also the time inside <see cref="WorkerPool.For{T}"/> calls. Counters only grow; a profiler reads
/// them before and after the span it measures. Attach with <see cref="WorkerPool.Times"/>; a pool without one does
/// not read any clock.
/// </summary>
/// <remarks>
/// A worker adds an item's times before it marks the item complete, so once <see cref="WorkerPool.For{T}"/> has
/// returned, every item of that call is counted. Each thread writes only its own cache line.
/// </remarks>
internal sealed class PoolTimes
{
    // Per thread one 64-byte line of longs: busy Stopwatch ticks, CPU ns, items; thread 0 also in-call ticks, calls.
    private const int Stride = 8;
    private const int BusySlot = 0, CpuSlot = 1, ItemsSlot = 2, InCallSlot = 3, CallsSlot = 4;
    private readonly long[] _slots;

    /// <summary>Counters for a pool of <paramref name="threads"/> threads (counting the caller).</summary>
    public PoolTimes(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _slots = new long[(threads + 1) * Stride]; // + 1: nothing else shares the last thread's line
    }

    /// <summary>Threads counted, the calling thread included.</summary>
    public int Threads { get; }

    /// <summary>Wall time (<see cref="Stopwatch"/> ticks) thread <paramref name="thread"/> spent inside work items.</summary>
    public long BusyTicks(int thread) => Volatile.Read(ref _slots[thread * Stride + BusySlot]);

    /// <summary>CPU nanoseconds thread <paramref name="thread"/> spent inside work items.</summary>
    public long CpuNanoseconds(int thread) => Volatile.Read(ref _slots[thread * Stride + CpuSlot]);

    /// <summary>Work items thread <paramref name="thread"/> ran.</summary>
    public long ItemsRun(int thread) => Volatile.Read(ref _slots[thread * Stride + ItemsSlot]);

    /// <summary>Wall time (ticks) the calling threads spent inside parallel <see cref="WorkerPool.For{T}"/> calls.</summary>
    public long InCallTicks => Volatile.Read(ref _slots[InCallSlot]);

    /// <summary>Parallel <see cref="WorkerPool.For{T}"/> calls (inline ones are not counted).</summary>
    public long Calls => Volatile.Read(ref _slots[CallsSlot]);

    internal void AddItem(int thread, long ticks, long cpuNanoseconds)
    {
        Add(thread * Stride + BusySlot, ticks);
        Add(thread * Stride + CpuSlot, cpuNanoseconds);
        Add(thread * Stride + ItemsSlot, 1);
    }

    internal void AddCall(long ticks)
    {
        Add(InCallSlot, ticks);
        Add(CallsSlot, 1);
    }

    // Only the slot's own thread writes it, so read-add-publish needs no interlocked operation.
    private void Add(int slot, long value) => Volatile.Write(ref _slots[slot], _slots[slot] + value);
}
