using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using Gemma.Core;
using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Cli.Bench;

/// <summary>
/// <c>gemma bench --profile</c>: where the time of a prefill and of a decode step goes, through the real model code.
/// Attaches a <see cref="StepProfile"/> to a fresh context, prefills the bench prompt and decodes greedily, best of
/// the repetitions (the one with the least wall time), and writes per phase: wall ms and CPU ms (all threads), each
/// thread's busy ms, the threads' idle ms (threads × wall − busy: serial phases, waiting for the last item, wake-up),
/// and for the matmuls the effective GB/s (decode) or GFLOP/s (prefill) against the machine's measured limits.
/// </summary>
internal static class StepBreakdown
{
    /// <summary>Runs the profile and writes both tables (markdown) to <paramref name="o"/>.</summary>
    public static void Run(GemmaModel model, int[] tokens, int nGen, int reps, double readGBPerSecond, double fmaGFlopPerSecond, TextWriter o)
    {
        int nPrompt = tokens.Length;
        using InferenceContext ctx = model.CreateContext(nPrompt + nGen);
        var cost = ModelCost.Of(model, ctx.Cache.BytesPerElement);
        StepProfile? bestPrefill = null, bestDecode = null;
        double bestPrefillMs = double.MaxValue, bestDecodeMs = double.MaxValue, spinDecodeMs = 0;
        for (int rep = -1; rep < reps; rep++) // rep −1 warms up
        {
            ctx.Reset();
            var prefill = new StepProfile(ctx.Pool);
            ctx.State.Profile = prefill;
            prefill.Start();
            int next = TensorPrimitives.IndexOfMax(ctx.Prefill(tokens));
            ctx.State.Lap(Phase.Sample);

            prefill.Dispose();
            var decode = new StepProfile(ctx.Pool);
            ctx.State.Profile = decode;
            long workers0 = WorkerCpuNanoseconds();
            decode.Start();
            for (int i = 0; i < nGen; i++)
            {
                next = TensorPrimitives.IndexOfMax(ctx.Decode(next));
                ctx.State.Lap(Phase.Sample);
            }
            long workerCpu = WorkerCpuNanoseconds() - workers0;
            ctx.State.Profile = null;
            decode.Dispose();
            if (rep < 0) continue;
            double prefillMs = Total(prefill.WallTicks), decodeMs = Total(decode.WallTicks);
            if (prefillMs < bestPrefillMs) (bestPrefill, bestPrefillMs) = (prefill, prefillMs);
            if (decodeMs < bestDecodeMs)
            {
                (bestDecode, bestDecodeMs) = (decode, decodeMs);
                long itemCpu = 0;
                for (int p = 0; p < decode.ItemCpu.GetLength(0); p++)
                    for (int t = 1; t < decode.Threads; t++) itemCpu += decode.ItemCpu[p, t];
                spinDecodeMs = (workerCpu - itemCpu) / 1e6 / nGen;
            }
        }

        var matrices = MatrixCosts.Of(model);
        int start = nPrompt, chunks = (nPrompt + model.Options.PrefillChunk - 1) / model.Options.PrefillChunk;
        double kvBytes = 0;
        for (int p = start; p < start + nGen; p++) kvBytes += cost.KvBytesRead(p);
        double attentionFlops = 0;
        for (int p = 0; p < nPrompt; p++) attentionFlops += cost.AttentionFlops(p);

        o.WriteLine();
        o.WriteLine($"### Decode step (mean over {nGen} tokens at positions {nPrompt}…{nPrompt + nGen - 1}, best of {reps}), {bestDecode!.Threads} threads");
        o.WriteLine();
        Write(o, bestDecode, nGen, "GB/s", phase => phase switch
        {
            Phase.Attention => (kvBytes / nGen, readGBPerSecond),
            _ => matrices.TryGetValue(phase, out var m) ? (m.Bytes, readGBPerSecond) : (0, 0),
        }, 1e9);
        if (bestDecode.Threads > 1)
            o.WriteLine($"\nWorkers' CPU outside work items (spinning for the next call, waking): {spinDecodeMs:F2} ms per token.");

        o.WriteLine();
        o.WriteLine($"### Prefill of {nPrompt} tokens ({chunks} chunk(s) of ≤ {model.Options.PrefillChunk}; ms per prompt, best of {reps}), {bestPrefill!.Threads} threads");
        o.WriteLine();
        Write(o, bestPrefill, 1, "GFLOP/s", phase => phase switch
        {
            Phase.Attention => (attentionFlops, fmaGFlopPerSecond),
            Phase.Head => matrices.TryGetValue(phase, out var h) ? (2 * h.Params * chunks, fmaGFlopPerSecond) : (0, 0),
            _ => matrices.TryGetValue(phase, out var m) ? (2 * m.Params * nPrompt, fmaGFlopPerSecond) : (0, 0),
        }, 1e9);
    }

    /// <summary>One table: per phase and for the whole, per <paramref name="units"/> (tokens or prompts).</summary>
    private static void Write(TextWriter o, StepProfile p, int units, string rateUnit, Func<Phase, (double Amount, double Limit)> work, double scale)
    {
        int threads = p.Threads;
        var head = new StringBuilder("| phase | wall ms | % of wall | CPU ms (all threads) |");
        for (int t = 0; t < threads; t++) head.Append(t == 0 ? " busy ms: caller |" : $" worker {t} |");
        head.Append(" idle ms (all threads) | pool calls | ").Append(rateUnit).Append(" | of limit |");
        o.WriteLine(head);
        o.WriteLine("| --- |" + string.Concat(Enumerable.Repeat(" ---: |", 7 + threads)));
        double totalWall = Total(p.WallTicks);
        double sumWall = 0, sumCpu = 0, sumIdle = 0, calls = 0;
        var sumBusy = new double[threads];
        foreach (Phase phase in Enum.GetValues<Phase>())
        {
            int i = (int)phase;
            double wall = Ms(p.WallTicks[i]);
            if (wall == 0 && p.Calls[i] == 0) continue;
            double cpu = p.CallerCpu[i] / 1e6;
            var busy = new double[threads];
            busy[0] = wall - Ms(p.InCallTicks[i]) + Ms(p.BusyTicks[i, 0]);
            for (int t = 1; t < threads; t++) { busy[t] = Ms(p.BusyTicks[i, t]); cpu += p.ItemCpu[i, t] / 1e6; }
            double idle = threads * wall - busy.Sum();
            var line = new StringBuilder($"| {phase} | {wall / units:F2} | {100 * wall / totalWall:F1} % | {cpu / units:F2} |");
            for (int t = 0; t < threads; t++) line.Append(CultureInfo.InvariantCulture, $" {busy[t] / units:F2} |");
            line.Append(CultureInfo.InvariantCulture, $" {idle / units:F2} | {p.Calls[i] / (double)units:F0} |");
            (double amount, double limit) = work(phase);
            if (amount > 0 && wall > 0)
            {
                double rate = amount / (wall / units / 1e3) / scale;
                line.Append(CultureInfo.InvariantCulture, $" {rate:F1} | {rate / limit:F2} |");
            }
            else line.Append(" | |");
            o.WriteLine(line);
            sumWall += wall; sumCpu += cpu; sumIdle += idle; calls += p.Calls[i];
            for (int t = 0; t < threads; t++) sumBusy[t] += busy[t];
        }
        var total = new StringBuilder($"| **total** | {sumWall / units:F2} | 100 % | {sumCpu / units:F2} |");
        for (int t = 0; t < threads; t++) total.Append(CultureInfo.InvariantCulture, $" {sumBusy[t] / units:F2} |");
        total.Append(CultureInfo.InvariantCulture, $" {sumIdle / units:F2} | {calls / units:F0} | | |");
        o.WriteLine(total);
    }

    private static double Total(long[] ticks) => Ms(ticks.Sum());

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Bytes and weights of the matrices each matmul phase multiplies, summed over layers.</summary>
    private static class MatrixCosts
    {
        public static Dictionary<Phase, (double Bytes, double Params)> Of(GemmaModel model)
        {
            var d = new Dictionary<Phase, (double Bytes, double Params)>();
            void Add(Phase p, in WeightMatrix m)
            {
                d.TryGetValue(p, out var v);
                d[p] = (v.Bytes + m.ByteLength, v.Params + (double)m.Rows * m.Cols);
            }
            foreach (LayerWeights w in model.Weights.Layers)
            {
                Add(Phase.Qkv, w.QProj); Add(Phase.Qkv, w.KProj); Add(Phase.Qkv, w.VProj);
                Add(Phase.OProj, w.OProj);
                Add(Phase.GateUp, w.GateProj); Add(Phase.GateUp, w.UpProj);
                Add(Phase.Down, w.DownProj);
            }
            Add(Phase.Head, model.Weights.OutputHead);
            return d;
        }
    }

    /// <summary>
    /// CPU time of the pool's worker threads so far (Linux: <c>/proc/self/task/*/schedstat</c> of the threads named
    /// "Gemma worker …"; 0 elsewhere) — their time outside work items is spinning and waking.
    /// </summary>
    private static long WorkerCpuNanoseconds()
    {
        long sum = 0;
        try
        {
            foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith("Gemma worker", StringComparison.Ordinal)) continue;
                string stat = File.ReadAllText(Path.Combine(task, "schedstat"));
                sum += long.Parse(stat.AsSpan(0, stat.IndexOf(' ')), CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException) { return 0; }
        return sum;
    }
}
