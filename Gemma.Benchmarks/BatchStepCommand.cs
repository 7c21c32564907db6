using System.Diagnostics;
using System.Runtime.InteropServices;
using Gemma.Core;
using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Benchmarks;

/// <summary>
/// <c>batch-step</c>: where the time of one batched decode step goes. For each row count n it times
/// <see cref="Transformer.ForwardBatch"/> with n sequences decoding one token each (logits for every row, as the
/// server asks), then the step's matmuls alone on the same weights (per layer q/k/v fused, o, gate/up fused, down;
/// then the output head), and reports the rest (attention, norms, RoPE, embedding, soft-capping) as the difference.
/// One thread, thread CPU time (usable on a loaded machine), best of N steps.
/// <code>dotnet run -c Release --project Gemma.Benchmarks -- batch-step -m /tmp/model.gguf --rows 1,2,4,8 --steps 12</code>
/// </summary>
internal static class BatchStepCommand
{
    public static int Run(string[] args)
    {
        string? path = null;
        int[] rows = [1, 2, 4, 8];
        int steps = 12, position = 32;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-m": case "--model": path = args[++i]; break;
                case "--rows": rows = [.. args[++i].Split(',').Select(int.Parse)]; break;
                case "--steps": steps = int.Parse(args[++i]); break;
                case "--position": position = int.Parse(args[++i]); break; // cache length before the timed steps
                default: Console.Error.WriteLine($"error: unknown argument {args[i]}"); return 1;
            }
        }
        if (path is null) { Console.Error.WriteLine("error: -m MODEL is required"); return 1; }
        using var model = GemmaModel.Load(path, new GemmaModelOptions { Threads = 1 });
        var config = model.Config;
        Transformer transformer = model.Transformer;
        int maxRows = rows.Max();
        using var batch = new BatchRows(config, maxRows);
        Console.WriteLine($"model={Path.GetFileName(path)} threads=1 time=thread CPU, best of {steps} steps, cache length {position}..{position + steps + 2}");
        Console.WriteLine("| n | step ms | matmuls ms | of which head ms | rest ms | ms per token | step / step(1) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        double step1 = 0;
        foreach (int n in rows)
        {
            var caches = Enumerable.Range(0, n).Select(_ => new KvCache(config, position + steps + 8, 1)).ToArray();
            int[] tokens = [.. Enumerable.Range(0, n).Select(i => 1000 + 17 * i)];
            int[] logitRows = [.. Enumerable.Range(0, n)];
            // Fill the caches to `position` one token at a time (as decode does), then time decode steps.
            for (int p = 0; p < position; p++) transformer.ForwardBatch(tokens, caches, [], batch);
            double best = double.MaxValue;
            for (int s = 0; s < steps + 2; s++)
            {
                long c0 = ThreadCpu.Nanoseconds();
                transformer.ForwardBatch(tokens, caches, logitRows, batch);
                double ms = (ThreadCpu.Nanoseconds() - c0) / 1e6;
                if (s >= 2) best = Math.Min(best, ms);
            }
            (double matmul, double head) = Matmuls(transformer.Weights, config.HiddenSize, config.QueryDim, config.IntermediateSize, n, steps);
            if (n == 1) step1 = best;
            Console.WriteLine($"| {n} | {best:F1} | {matmul:F1} | {head:F1} | {best - matmul:F1} | {best / n:F1} | {(step1 > 0 ? best / step1 : double.NaN):F2} |");
        }
        return 0;
    }

    /// <summary>Best-of CPU time of one step's matmuls (all layers, then the head) for n rows, same calls as the model.</summary>
    private static (double All, double Head) Matmuls(GemmaWeights weights, int hidden, int queryDim, int intermediate, int n, int steps)
    {
        var x = new float[n * Math.Max(intermediate, Math.Max(hidden, queryDim))];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((i * 2654435761u % 2001) / 1000.0 - 1.0);
        LayerWeights l0 = weights.Layers[0];
        var q = new float[n * l0.QProj.Rows]; var k = new float[n * l0.KProj.Rows]; var v = new float[n * l0.VProj.Rows];
        var o = new float[n * hidden]; var gate = new float[n * intermediate]; var up = new float[n * intermediate];
        var logits = new float[n * weights.OutputHead.Rows];
        double all = double.MaxValue, head = double.MaxValue;
        for (int s = 0; s < Math.Max(3, steps / 3) + 1; s++)
        {
            long c0 = ThreadCpu.Nanoseconds();
            foreach (LayerWeights w in weights.Layers)
            {
                MatMul.Linear3(w.QProj, q, w.KProj, k, w.VProj, v, x.AsSpan(0, n * hidden), n);
                MatMul.Linear(w.OProj, x.AsSpan(0, n * queryDim), o, n);
                MatMul.Linear2(w.GateProj, gate, w.UpProj, up, x.AsSpan(0, n * hidden), n);
                MatMul.Linear(w.DownProj, x.AsSpan(0, n * intermediate), o, n);
            }
            long c1 = ThreadCpu.Nanoseconds();
            MatMul.Linear(weights.OutputHead, x.AsSpan(0, n * hidden), logits, n);
            long c2 = ThreadCpu.Nanoseconds();
            if (s == 0) continue; // warm-up
            all = Math.Min(all, (c2 - c0) / 1e6);
            head = Math.Min(head, (c2 - c1) / 1e6);
        }
        return (all, head);
    }

}
