using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Kernels;

[Category("Kernels")]
public unsafe class WorkerPoolTests
{
    private struct CountWork : IParallelWork
    {
        public int* Hits;
        public int* Threads;
        public int Spin;
        public void Execute(int index)
        {
            if (Spin > 0) Thread.SpinWait(Spin);
            Interlocked.Increment(ref Hits[index]);
            Threads[index] = Environment.CurrentManagedThreadId;
        }
    }

    private ref struct SpanWork(Span<int> target) : IParallelWork
    {
        private readonly Span<int> _target = target;
        public void Execute(int index) => _target[index] = index * index;
    }

    private struct ThrowWork : IParallelWork
    {
        public void Execute(int index) { if (index == 5) throw new InvalidOperationException("item 5"); }
    }

    private struct NestedWork : IParallelWork
    {
        public WorkerPool Pool;
        public int* Hits;
        public void Execute(int index)
        {
            int* ids = stackalloc int[4];
            var inner = new CountWork { Hits = Hits + index * 4, Threads = ids };
            Pool.For(4, ref inner);
        }
    }

    [Test]
    public void EveryItemRunsExactlyOnce([Values(1, 2, 3)] int threads)
    {
        using var pool = new WorkerPool(threads);
        foreach (int count in new[] { 0, 1, 2, 3, 17, 1000 })
            for (int repeat = 0; repeat < 20; repeat++)
            {
                var hits = new int[Math.Max(count, 1)];
                var ids = new int[Math.Max(count, 1)];
                fixed (int* h = hits, t = ids)
                {
                    var work = new CountWork { Hits = h, Threads = t };
                    pool.For(count, ref work);
                }
                Assert.That(hits.Take(count), Is.All.EqualTo(1), $"count {count}");
            }
    }

    [Test]
    public void ManyTinyCallsRunEveryItemExactlyOnce([Values(2, 3)] int threads)
    {
        // Tiny items and back-to-back calls: workers often wake up after the caller already finished a call and must
        // neither claim items of a later call twice nor miss one.
        using var pool = new WorkerPool(threads);
        var rng = new Random(1);
        var hits = new int[64];
        var ids = new int[64];
        int bad = 0;
        fixed (int* h = hits, t = ids)
        {
            for (int call = 0; call < 20000; call++)
            {
                int count = rng.Next(2, 64);
                var work = new CountWork { Hits = h, Threads = t, Spin = call % 7 == 0 ? 50 : 0 };
                pool.For(count, ref work);
                for (int i = 0; i < count; i++) { if (h[i] != 1) bad++; h[i] = 0; }
                for (int i = count; i < hits.Length; i++) if (h[i] != 0) bad++;
            }
        }
        Assert.That(bad, Is.Zero);
    }

    /// <summary>
    /// Two items, each of which waits until both have started: one thread cannot run both at once, so the call can
    /// only finish if a worker takes one — whatever the wake-up order (no timing assumption; the 30 s bound only turns
    /// a broken pool into a failure instead of a hang).
    /// </summary>
    private struct RendezvousWork : IParallelWork
    {
        public int* Started;
        public int* Threads;
        public int* TimedOut;
        public void Execute(int index)
        {
            Threads[index] = Environment.CurrentManagedThreadId;
            Interlocked.Increment(ref *Started);
            int* started = Started;
            if (!SpinWait.SpinUntil(() => Volatile.Read(ref *started) == 2, TimeSpan.FromSeconds(30))) *TimedOut = 1;
        }
    }

    [Test]
    public void WorkersTakePart()
    {
        using var pool = new WorkerPool(2);
        int started = 0, timedOut = 0;
        var ids = new int[2];
        fixed (int* t = ids)
        {
            var work = new RendezvousWork { Started = &started, Threads = t, TimedOut = &timedOut };
            pool.For(2, ref work);
        }
        Assert.That(timedOut, Is.Zero, "the second item never started: no worker took part");
        Assert.That(ids.Distinct().Count(), Is.EqualTo(2), "the caller and the worker each ran one item");
    }

    [Test]
    public void RefStructWorkCanHoldSpans()
    {
        using var pool = new WorkerPool(2);
        var target = new int[100];
        var work = new SpanWork(target);
        pool.For(target.Length, ref work);
        Assert.That(target, Is.EqualTo(Enumerable.Range(0, 100).Select(i => i * i)).AsCollection);
    }

    [Test]
    public void ExceptionIsRethrownAndPoolStaysUsable()
    {
        using var pool = new WorkerPool(2);
        var bad = new ThrowWork();
        Assert.Throws<InvalidOperationException>(() => pool.For(100, ref bad));
        var hits = new int[64];
        var ids = new int[64];
        fixed (int* h = hits, t = ids)
        {
            var work = new CountWork { Hits = h, Threads = t };
            pool.For(64, ref work);
        }
        Assert.That(hits, Is.All.EqualTo(1));
    }

    [Test]
    public void NestedCallRunsInline()
    {
        using var pool = new WorkerPool(2);
        var hits = new int[8 * 4];
        fixed (int* h = hits)
        {
            var work = new NestedWork { Pool = pool, Hits = h };
            pool.For(8, ref work);
        }
        Assert.That(hits, Is.All.EqualTo(1));
    }

    [Test]
    public void ConcurrentCallersSerialize()
    {
        using var pool = new WorkerPool(2);
        var failures = 0;
        var callers = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            var hits = new int[300];
            var ids = new int[300];
            for (int i = 0; i < 200; i++)
            {
                Array.Clear(hits);
                fixed (int* h = hits, t = ids)
                {
                    var work = new CountWork { Hits = h, Threads = t };
                    pool.For(hits.Length, ref work);
                }
                if (hits.Any(v => v != 1)) Interlocked.Increment(ref failures);
            }
        })).ToList();
        callers.ForEach(t => t.Start());
        callers.ForEach(t => t.Join());
        Assert.That(failures, Is.Zero);
    }

    /// <summary>
    /// One item per pool thread; each item waits until all have started, so no thread can take two and every
    /// thread of the pool records its own allocation counter.
    /// </summary>
    [Test]
    public void LinearWithPoolAllocatesNothingInSteadyState([Values(nameof(WeightType.BF16), nameof(WeightType.Q8_0))] string type)
    {
        using GuardedBuffer<byte> wb = KernelTestData.Weights(Enum.Parse<WeightType>(type), 2048, 2304, 1, out WeightMatrix w);
        float[] x = KernelTestData.Random(4 * 2304, 2);
        var y = new float[4 * 2048];
        using var pool = new WorkerPool(2);
        for (int i = 0; i < 5; i++) { MatMul.Linear(w, x.AsSpan(0, 2304), y, 1, pool); MatMul.Linear(w, x, y, 4, pool); } // warm up (JIT, tier-up, scratch)
        // Per-thread GEMM panel scratch is allocated at a thread's first GEMM item; on a loaded machine a worker may
        // not have claimed one above, so run a GEMM on every pool thread once (inline there, own output).
        float[][] ys = [.. Enumerable.Range(0, pool.Threads).Select(_ => new float[4 * 2048])];
        WorkerAllocationProbe.OnEveryThread(pool, i => MatMul.Linear(w, x, ys[i], 4));
        // One unmeasured round of the measured calls: one full-suite run saw 7984 B on the calling thread in the measured
        // window, a one-off not reproduced in isolation and not the size of any buffer here (likely the runtime's own
        // per-thread state as methods tier up), so the first round counts as warm-up; an allocation that recurs still
        // shows in the measured round below.
        for (int i = 0; i < 100; i++) MatMul.Linear(w, x.AsSpan(0, 2304), y, 1, pool);
        for (int i = 0; i < 10; i++) MatMul.Linear(w, x, y, 4, pool);

        // The calling thread is measured directly; the workers through a probe work item that reads each thread's own
        // counter before and after (the probe itself allocates nothing).
        Dictionary<int, long> before = WorkerAllocationProbe.Probe(pool);
        long thread = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) MatMul.Linear(w, x.AsSpan(0, 2304), y, 1, pool);
        for (int i = 0; i < 10; i++) MatMul.Linear(w, x, y, 4, pool);
        thread = GC.GetAllocatedBytesForCurrentThread() - thread;
        Dictionary<int, long> after = WorkerAllocationProbe.Probe(pool);
        int caller = Environment.CurrentManagedThreadId;
        var workers = before.Keys.Intersect(after.Keys).Where(id => id != caller).ToList();
        TestContext.Out.WriteLine($"probe threads before: {string.Join(",", before.Keys)} after: {string.Join(",", after.Keys)}");
        TestContext.Out.WriteLine($"allocated by 110 Linear calls: calling thread {thread} B; workers " +
                                  string.Join(", ", workers.Select(id => $"#{id}: {after[id] - before[id]} B")));
        Assert.That(thread, Is.Zero, "calling thread");
        Assert.That(workers, Is.Not.Empty, "the probe did not reach a worker thread");
        foreach (int id in workers) Assert.That(after[id] - before[id], Is.Zero, $"worker thread #{id}");
    }

    [Test]
    public void AttachedTimesCountEveryItemOnTheThreadThatRanIt([Values(1, 2, 3)] int threads)
    {
        using var pool = new WorkerPool(threads);
        var times = new PoolTimes(threads);
        pool.Times = times;
        const int count = 500;
        int* hits = stackalloc int[count];
        int* ids = stackalloc int[count];
        var work = new CountWork { Hits = hits, Threads = ids, Spin = 200 };
        pool.For(count, ref work);
        pool.For(count, ref work);
        long items = 0;
        for (int t = 0; t < threads; t++)
        {
            items += times.ItemsRun(t);
            Assert.That(times.BusyTicks(t), Is.GreaterThanOrEqualTo(0), $"thread {t}");
            if (times.ItemsRun(t) > 0) Assert.That(times.BusyTicks(t), Is.Positive, $"thread {t} ran items in no time");
        }
        Assert.That(items, Is.EqualTo(threads > 1 ? 2 * count : 0), "items counted (inline calls are not pool calls)");
        Assert.That(times.Calls, Is.EqualTo(threads > 1 ? 2 : 0));

        pool.Times = null; // detached: nothing more is counted
        pool.For(count, ref work);
        Assert.That(times.Calls, Is.EqualTo(threads > 1 ? 2 : 0));
    }
}
