using System.Diagnostics;
using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>The parts of a forward pass a <see cref="StepProfile"/> tells apart.</summary>
internal enum Phase
{
    /// <summary>Embedding lookup × √d (and whatever ran since the previous pass: the caller's own work).</summary>
    Embed,
    /// <summary>RMSNorms (input, post-attention, pre-/post-feed-forward, q/k, final) and the residual adds.</summary>
    Norms,
    /// <summary>The fused q/k/v projections.</summary>
    Qkv,
    /// <summary>RoPE tables and rotation, and the keys/values written to the cache.</summary>
    Rope,
    /// <summary>Scores, softmax and weighted values over the cache.</summary>
    Attention,
    /// <summary>The attention output projection.</summary>
    OProj,
    /// <summary>The fused gate/up projections.</summary>
    GateUp,
    /// <summary>GELU(gate) · up.</summary>
    Activation,
    /// <summary>The down projection.</summary>
    Down,
    /// <summary>The (tied) output head.</summary>
    Head,
    /// <summary>Final logit soft-capping.</summary>
    SoftCap,
    /// <summary>Choosing the next token from the logits (timed by the caller of the pass).</summary>
    Sample,
}

/// <summary>
/// Wall and CPU time of forward passes per <see cref="Phase"/> and per thread — <c>gemma bench --profile</c>. The pass
/// calls <see cref="InferenceState.Lap"/> after each part: the time since the previous lap goes to that part (a
/// stopwatch's laps, so the parts add up to the whole). The calling thread's time comes from its own clocks, the
/// workers' from the pool's <see cref="PoolTimes"/>; a worker's time outside work items is idle (spinning, asleep
/// or waiting to be scheduled). Attaching one costs one CPU-clock read (a system call) per lap and per work item;
/// an <see cref="InferenceState"/> without one reads no clock.
/// </summary>
internal sealed class StepProfile : IDisposable
{
    private static readonly int PhaseCount = Enum.GetValues<Phase>().Length;
    private readonly WorkerPool? _pool;
    private readonly PoolTimes? _times;
    private long _lastTicks, _lastCpu, _lastInCall, _lastCalls;
    private readonly long[] _lastBusy, _lastItemCpu;

    /// <summary>A profile of passes that run on <paramref name="pool"/> (attached until disposed) or on the caller alone.</summary>
    public StepProfile(WorkerPool? pool)
    {
        _pool = pool;
        Threads = pool?.Threads ?? 1;
        if (pool != null) pool.Times = _times = new PoolTimes(Threads);
        WallTicks = new long[PhaseCount];
        CallerCpu = new long[PhaseCount];
        InCallTicks = new long[PhaseCount];
        Calls = new long[PhaseCount];
        BusyTicks = new long[PhaseCount, Threads];
        ItemCpu = new long[PhaseCount, Threads];
        _lastBusy = new long[Threads];
        _lastItemCpu = new long[Threads];
        Start();
    }

    /// <summary>Threads of the pool, the caller counted as thread 0.</summary>
    public int Threads { get; }

    /// <summary><c>[phase]</c> wall time (<see cref="Stopwatch"/> ticks) on the calling thread.</summary>
    public long[] WallTicks { get; }

    /// <summary><c>[phase]</c> CPU nanoseconds of the calling thread (inside and outside work items).</summary>
    public long[] CallerCpu { get; }

    /// <summary><c>[phase]</c> ticks the caller spent inside parallel pool calls (dispatch, items, waiting for the last item).</summary>
    public long[] InCallTicks { get; }

    /// <summary><c>[phase]</c> parallel pool calls.</summary>
    public long[] Calls { get; }

    /// <summary><c>[phase, thread]</c> ticks inside work items.</summary>
    public long[,] BusyTicks { get; }

    /// <summary><c>[phase, thread]</c> CPU nanoseconds inside work items.</summary>
    public long[,] ItemCpu { get; }

    /// <summary>Starts a new lap without counting the time since the last one (e.g. after a pause between passes).</summary>
    public void Start()
    {
        _lastTicks = Stopwatch.GetTimestamp();
        _lastCpu = ThreadCpu.Nanoseconds();
        if (_times == null) return;
        _lastInCall = _times.InCallTicks;
        _lastCalls = _times.Calls;
        for (int t = 0; t < Threads; t++) (_lastBusy[t], _lastItemCpu[t]) = (_times.BusyTicks(t), _times.CpuNanoseconds(t));
    }

    /// <summary>Adds the time since the previous lap to <paramref name="phase"/>.</summary>
    public void Lap(Phase phase)
    {
        long ticks = Stopwatch.GetTimestamp(), cpu = ThreadCpu.Nanoseconds();
        int p = (int)phase;
        WallTicks[p] += ticks - _lastTicks;
        CallerCpu[p] += cpu - _lastCpu;
        (_lastTicks, _lastCpu) = (ticks, cpu);
        if (_times == null) return;
        long inCall = _times.InCallTicks, calls = _times.Calls;
        InCallTicks[p] += inCall - _lastInCall;
        Calls[p] += calls - _lastCalls;
        (_lastInCall, _lastCalls) = (inCall, calls);
        for (int t = 0; t < Threads; t++)
        {
            long busy = _times.BusyTicks(t), itemCpu = _times.CpuNanoseconds(t);
            BusyTicks[p, t] += busy - _lastBusy[t];
            ItemCpu[p, t] += itemCpu - _lastItemCpu[t];
            (_lastBusy[t], _lastItemCpu[t]) = (busy, itemCpu);
        }
    }

    /// <summary>Zeroes every counter and starts a new lap.</summary>
    public void Clear()
    {
        foreach (Array a in (Array[])[WallTicks, CallerCpu, InCallTicks, Calls, BusyTicks, ItemCpu]) Array.Clear(a);
        Start();
    }

    /// <summary>Detaches from the pool.</summary>
    public void Dispose()
    {
        if (_pool != null && ReferenceEquals(_pool.Times, _times)) _pool.Times = null;
    }
}
