using System.Diagnostics;
using Gemma.Core;
using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Benchmarks;

/// <summary>
/// <c>batch-step</c>: where the time of one batched decode step goes. For each row count n it times
/// <see cref="Transformer.ForwardBatch"/> with n sequences decoding one token each (logits for every row, as the
/// server asks), then the step's matmuls alone on the same weights (per layer q/k/v fused, o, gate/up fused, down;
/// then the output head), and reports the rest (attention, norms, RoPE, embedding, soft-capping) as the difference.
/// With <c>--detail</c> also every matrix on its own, grouped by role and weight type (bytes, ms, GB/s of weights
/// read), the activation quantization of the step, and the cost of the worker-pool round trips.
/// Time: with 1 thread (default) the thread's CPU time (usable on a loaded machine); with <c>--threads T</c> &gt; 1
/// the wall clock (the step's real time with T workers). Best of N steps.
/// With <c>--profile</c> also the pass's phases (<see cref="StepProfile"/>: wall and calling-thread CPU per phase),
/// which shows what of the step runs on one thread while the pool's others wait.
/// <code>dotnet run -c Release --project Gemma.Benchmarks -- batch-step -m /tmp/model.gguf --rows 1,2,4,8 --steps 12 [--threads 2] [--detail] [--profile] [--no-mmap]</code>
/// </summary>
internal static unsafe class BatchStepCommand
{
    public static int Run(string[] args)
    {
        string? path = null;
        int[] rows = [1, 2, 4, 8];
        int steps = 12, position = 32, threads = 1;
        bool detail = false, mmap = true, profile = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-m": case "--model": path = args[++i]; break;
                case "--rows": rows = [.. args[++i].Split(',').Select(int.Parse)]; break;
                case "--steps": steps = int.Parse(args[++i]); break;
                case "--position": position = int.Parse(args[++i]); break; // cache length before the timed steps
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--detail": detail = true; break;
                case "--profile": profile = true; break; // per-phase wall and CPU time of the step (StepProfile laps)
                case "--no-mmap": mmap = false; break; // weights copied into anonymous (huge-page) memory
                default: Console.Error.WriteLine($"error: unknown argument {args[i]}"); return 1;
            }
        }
        if (path is null) { Console.Error.WriteLine("error: -m MODEL is required"); return 1; }
        using var model = GemmaModel.Load(path, new GemmaModelOptions { Threads = 1, MemoryMap = mmap });
        var config = model.Config;
        Transformer transformer = model.Transformer;
        int maxRows = rows.Max();
        using var batch = new BatchRows(config, maxRows, threads);
        var clock = new Clock(threads);
        Console.WriteLine($"model={Path.GetFileName(path)}{(mmap ? "" : " (copied, no mmap)")} threads={threads} time={clock.Name}, best of {steps} steps, cache length {position}..{position + steps + 2}");
        Console.WriteLine("| n | step ms | matmuls ms | of which head ms | rest ms | ms per token | step / step(1) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        double step1 = 0;
        var details = new List<(int N, double Step, List<Row> Rows)>();
        var profiles = new List<(int N, StepProfile Profile)>();
        foreach (int n in rows)
        {
            var caches = Enumerable.Range(0, n).Select(_ => new KvCache(config, position + 2 * steps + 12, 1)).ToArray();
            int[] tokens = [.. Enumerable.Range(0, n).Select(i => 1000 + 17 * i)];
            int[] logitRows = [.. Enumerable.Range(0, n)];
            // Fill the caches to `position` one token at a time (as decode does), then time decode steps.
            for (int p = 0; p < position; p++) transformer.ForwardBatch(tokens, caches, [], batch);
            double best = double.MaxValue;
            for (int s = 0; s < steps + 2; s++)
            {
                long c0 = clock.Now();
                transformer.ForwardBatch(tokens, caches, logitRows, batch);
                double ms = clock.Ms(c0);
                if (s >= 2) best = Math.Min(best, ms);
            }
            if (profile) profiles.Add((n, Profile(transformer, tokens, caches, logitRows, batch, steps)));
            var m = new Matmuls(transformer.Weights, config.HiddenSize, config.QueryDim, config.IntermediateSize, n, batch.Pool, clock);
            (double matmul, double head) = m.Fused(steps);
            if (n == 1) step1 = best;
            Console.WriteLine($"| {n} | {best:F1} | {matmul:F1} | {head:F1} | {best - matmul:F1} | {best / n:F1} | {(step1 > 0 ? best / step1 : double.NaN):F2} |");
            if (detail) details.Add((n, best, m.Separate(steps, config.NumLayers)));
        }
        foreach (var (n, p) in profiles)
        {
            // Mean per step over the profiled steps. Caller CPU covers the calling thread only; "busy" is the time
            // inside work items on all threads, so wall − busy/threads is what the other threads did not share.
            Console.WriteLine();
            Console.WriteLine($"n = {n}: per phase, mean of {steps} profiled steps ({p.Threads} threads)");
            Console.WriteLine("| phase | wall ms | caller CPU ms | pool calls | busy ms (all threads) |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            double tick = 1000.0 / Stopwatch.Frequency;
            foreach (Phase phase in Enum.GetValues<Phase>())
            {
                int i = (int)phase;
                long busy = 0;
                for (int t = 0; t < p.Threads; t++) busy += p.BusyTicks[i, t];
                if (p.WallTicks[i] == 0) continue;
                Console.WriteLine($"| {phase} | {p.WallTicks[i] * tick / steps:F2} | {p.CallerCpu[i] / 1e6 / steps:F2} | {p.Calls[i] / (double)steps:F0} | {busy * tick / steps:F2} |");
            }
            Console.WriteLine($"| all | {p.WallTicks.Sum() * tick / steps:F2} | {p.CallerCpu.Sum() / 1e6 / steps:F2} | {p.Calls.Sum() / (double)steps:F0} | |");
            p.Dispose();
        }
        foreach (var (n, step, list) in details)
        {
            Console.WriteLine();
            Console.WriteLine($"n = {n}: every matrix on its own (one Linear per matrix and layer, summed over the layers; best of rounds), step {step:F1} ms");
            Console.WriteLine("| part | type | calls | MB read | ms | GB/s | of step |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (Row r in list)
                Console.WriteLine($"| {r.Part} | {r.Type} | {r.Calls} | {(r.Bytes > 0 ? $"{r.Bytes / 1e6:F1}" : "")} | {r.Ms:F2} | {(r.Bytes > 0 ? $"{r.Bytes / r.Ms / 1e6:F1}" : "")} | {r.Ms / step:P1} |");
        }
        return 0;
    }

    /// <summary><paramref name="steps"/> more decode steps with a <see cref="StepProfile"/> attached (its laps are the pass's phases).</summary>
    private static StepProfile Profile(Transformer transformer, int[] tokens, KvCache[] caches, int[] logitRows, BatchRows batch, int steps)
    {
        transformer.ForwardBatch(tokens, caches, logitRows, batch); // warm
        var profile = new StepProfile(batch.Pool);
        batch.State.Profile = profile;
        profile.Clear();
        for (int s = 0; s < steps; s++)
        {
            profile.Start();
            transformer.ForwardBatch(tokens, caches, logitRows, batch);
        }
        batch.State.Profile = null;
        return profile;
    }

    /// <summary>One line of the detailed table: a role and weight type, summed over the layers.</summary>
    private sealed record Row(string Part, string Type, int Calls, long Bytes, double Ms);

    /// <summary>Thread CPU time with one thread; wall clock with several (the calling thread's CPU time misses the workers).</summary>
    private sealed class Clock(int threads)
    {
        public string Name => threads == 1 ? "thread CPU" : "wall";
        public long Now() => threads == 1 ? ThreadCpu.Nanoseconds() : Stopwatch.GetTimestamp();
        public double Ms(long start) => threads == 1 ? (ThreadCpu.Nanoseconds() - start) / 1e6 : Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The step's matmuls on the model's weights with synthetic activations, the same calls as the model.</summary>
    private sealed class Matmuls
    {
        private readonly GemmaWeights _weights;
        private readonly int _n, _hidden, _queryDim;
        private readonly WorkerPool? _pool;
        private readonly Clock _clock;
        private readonly float[] _x, _q, _k, _v, _o, _gate, _up, _logits;

        public Matmuls(GemmaWeights weights, int hidden, int queryDim, int intermediate, int n, WorkerPool? pool, Clock clock)
        {
            _weights = weights; _n = n; _hidden = hidden; _queryDim = queryDim; _pool = pool; _clock = clock;
            _x = new float[n * Math.Max(intermediate, Math.Max(hidden, queryDim))];
            for (int i = 0; i < _x.Length; i++) _x[i] = (float)((i * 2654435761u % 2001) / 1000.0 - 1.0);
            LayerWeights l0 = weights.Layers[0];
            _q = new float[n * l0.QProj.Rows]; _k = new float[n * l0.KProj.Rows]; _v = new float[n * l0.VProj.Rows];
            _o = new float[n * hidden]; _gate = new float[n * intermediate]; _up = new float[n * intermediate];
            _logits = new float[n * weights.OutputHead.Rows];
        }

        private Span<float> X(int cols) => _x.AsSpan(0, _n * cols);

        /// <summary>Best-of time of one step's matmuls (all layers, then the head) as the model calls them.</summary>
        public (double All, double Head) Fused(int steps)
        {
            double all = double.MaxValue, head = double.MaxValue;
            for (int s = 0; s < Math.Max(3, steps / 3) + 1; s++)
            {
                long c0 = _clock.Now();
                foreach (LayerWeights w in _weights.Layers)
                {
                    MatMul.Linear3(w.QProj, _q, w.KProj, _k, w.VProj, _v, X(_hidden), _n, _pool);
                    MatMul.Linear(w.OProj, X(_queryDim), _o, _n, _pool);
                    MatMul.Linear2(w.GateProj, _gate, w.UpProj, _up, X(_hidden), _n, _pool);
                    MatMul.Linear(w.DownProj, X(w.DownProj.Cols), _o, _n, _pool);
                }
                double layers = _clock.Ms(c0);
                long c1 = _clock.Now();
                MatMul.Linear(_weights.OutputHead, X(_hidden), _logits, _n, _pool);
                double h = _clock.Ms(c1);
                if (s == 0) continue; // warm-up
                all = Math.Min(all, layers + h);
                head = Math.Min(head, h);
            }
            return (all, head);
        }

        /// <summary>
        /// Every matrix as its own Linear (so q/k/v and gate/up are split and a fused call's types are told apart),
        /// grouped by role and type; then the activation quantization of one step and the pool round trips.
        /// </summary>
        public List<Row> Separate(int steps, int layers)
        {
            var parts = new List<(string Part, Func<LayerWeights, WeightMatrix> Pick, float[] Y)>
            {
                ("q", w => w.QProj, _q), ("k", w => w.KProj, _k), ("v", w => w.VProj, _v), ("o", w => w.OProj, _o),
                ("gate", w => w.GateProj, _gate), ("up", w => w.UpProj, _up), ("down", w => w.DownProj, _o),
            };
            var keys = new List<(string Part, WeightType Type)>();
            foreach (var (part, pick, _) in parts)
                foreach (LayerWeights w in _weights.Layers)
                    if (!keys.Contains((part, pick(w).Type))) keys.Add((part, pick(w).Type));
            var best = keys.ToDictionary(k => k, _ => double.MaxValue);
            double head = double.MaxValue;
            var sum = new Dictionary<(string, WeightType), double>();
            for (int s = 0; s < Math.Max(3, steps / 3) + 1; s++)
            {
                foreach (var k in keys) sum[k] = 0;
                foreach (var (part, pick, y) in parts)
                    foreach (LayerWeights w in _weights.Layers)
                    {
                        WeightMatrix m = pick(w);
                        long c0 = _clock.Now();
                        MatMul.Linear(m, X(m.Cols), y, _n, _pool);
                        sum[(part, m.Type)] += _clock.Ms(c0);
                    }
                long h0 = _clock.Now();
                MatMul.Linear(_weights.OutputHead, X(_hidden), _logits, _n, _pool);
                double h = _clock.Ms(h0);
                if (s == 0) continue; // warm-up
                foreach (var k in keys) best[k] = Math.Min(best[k], sum[k]);
                head = Math.Min(head, h);
            }
            var rows = new List<Row>();
            foreach (var (part, type) in keys)
            {
                int calls = 0; long bytes = 0;
                foreach (var (p, pick, _) in parts)
                    if (p == part)
                        foreach (LayerWeights w in _weights.Layers)
                            if (pick(w).Type == type) { calls++; bytes += pick(w).ByteLength; }
                rows.Add(new Row(part, type.ToString(), calls, bytes, best[(part, type)]));
            }
            WeightMatrix o = _weights.OutputHead;
            rows.Add(new Row("head", o.Type.ToString(), 1, o.ByteLength, head));
            rows.Add(new Row("all matrices", "", rows.Sum(r => r.Calls), rows.Sum(r => r.Bytes), rows.Sum(r => r.Ms)));
            rows.Add(new Row("activation quantization (in the above)", "", 4 * layers + 1, 0, Quantization(steps, layers)));
            rows.Add(new Row("pool round trips (5 per layer + head)", "", 5 * layers + 1, 0, RoundTrips(steps, 5 * layers + 1)));
            return rows;
        }

        /// <summary>
        /// One step's activation quantization (per layer: q/k/v, o, gate/up and down inputs; the head's), in the
        /// format of each call's weights — work the calling thread does before it hands out the rows.
        /// </summary>
        private double Quantization(int steps, int layers)
        {
            LayerWeights l0 = _weights.Layers[0];
            int[] cols = [_hidden, _queryDim, _hidden, l0.DownProj.Cols, _hidden];
            WeightMatrix[] types = [l0.QProj, l0.OProj, l0.GateProj, l0.DownProj, _weights.OutputHead];
            int maxCols = cols.Max();
            var q = new sbyte[_n * maxCols];
            var d = new float[_n * maxCols / 32];
            var bsums = new short[_n * maxCols / 16];
            double best = double.MaxValue;
            fixed (float* px = _x)
            fixed (sbyte* pq = q)
            fixed (float* pd = d)
            fixed (short* pb = bsums)
                for (int s = 0; s < Math.Max(3, steps / 3) + 1; s++)
                {
                    long c0 = _clock.Now();
                    for (int l = 0; l < layers; l++)
                        for (int i = 0; i < cols.Length - 1; i++) Quantize(types[i].Type, px, cols[i], pq, pd, pb);
                    Quantize(types[^1].Type, px, cols[^1], pq, pd, pb);
                    double ms = _clock.Ms(c0);
                    if (s > 0) best = Math.Min(best, ms);
                }
            return best;
        }

        private void Quantize(WeightType type, float* x, int cols, sbyte* q, float* d, short* bsums)
        {
            if (MatMul.UsesQ8KActivations(type)) MatMul.QuantizeQ8K(x, _n * cols / 256, q, d, bsums);
            else if (MatMul.UsesInt8Activations(type)) MatMul.QuantizeActivations(x, _n, cols, q, d);
        }

        /// <summary>Time of <paramref name="calls"/> empty pool calls of one item per thread (0 without a pool).</summary>
        private double RoundTrips(int steps, int calls)
        {
            if (_pool is null) return 0;
            var work = new EmptyWork();
            double best = double.MaxValue;
            for (int s = 0; s < Math.Max(3, steps / 3) + 1; s++)
            {
                long c0 = _clock.Now();
                for (int i = 0; i < calls; i++) _pool.For(_pool.Threads, ref work);
                double ms = _clock.Ms(c0);
                if (s > 0) best = Math.Min(best, ms);
            }
            return best;
        }

        private struct EmptyWork : IParallelWork
        {
            public readonly void Execute(int index) { }
        }
    }
}
