using System.Globalization;
using Gemma.Core;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Peer;

/// <summary>
/// <c>quality</c>: what Q8_0 costs against bf16 on the (trained) demo model, for Gemma.NET and for llama.cpp on the same
/// two GGUF files: mean KL(bf16 ‖ q8_0) of the next-token distributions and top-1 agreement (reference = the same
/// engine's bf16), and perplexity on held-out Japanese prose written for this benchmark (not in the training corpus).
/// The text is tokenized once with our tokenizer and both engines get the same ids. Windows: BOS + up to
/// <c>--window − 1</c> text tokens, every text token predicted exactly once.
/// </summary>
internal static class QualityCommand
{
    public static int Run(PeerArgs a)
    {
        int threads = a.Int("threads", Environment.ProcessorCount), window = a.Int("window", 256); // the demo model was trained on 256-token sequences
        if (window < 2 || window > 1024) throw new ArgumentException("--window must be 2..1024 (the demo model's context)");
        string dir = a.String("dir") ?? Path.Combine(Path.GetTempPath(), "gemma-peer");
        string textPath = a.String("text") ?? Path.Combine(PeerStats.RepoRoot(), "Gemma.Benchmarks", "Data", "heldout-ja.txt");
        // --type q8_0 (default), q4_k_m, q4_0 or q6_k: the quantized file both engines load (written by our quantizer).
        string label = (a.String("type") ?? "q8_0").ToLowerInvariant();
        Gemma.Core.Formats.Gguf.GgufOutputType type = label switch
        {
            "q8_0" => Gemma.Core.Formats.Gguf.GgufOutputType.Q8_0,
            "q4_k_m" => Gemma.Core.Formats.Gguf.GgufOutputType.Q4_K_M,
            "q4_0" => Gemma.Core.Formats.Gguf.GgufOutputType.Q4_0,
            "q6_k" => Gemma.Core.Formats.Gguf.GgufOutputType.Q6_K,
            _ => throw new ArgumentException("--type must be q8_0, q4_k_m, q4_0 or q6_k"),
        };
        (string bf16, string q8) = DemoModel.WriteGgufFiles(dir, type);
        string text = File.ReadAllText(textPath);
        int[] ids;
        using (var model = GemmaModel.Load(DemoModel.Folder, new GemmaModelOptions { Threads = 1 }))
            ids = model.RequireTokenizer().EncodeToIds(text, addBos: true);
        int[][] windows = Windows(ids, window);
        int predicted = windows.Sum(w => w.Length - 1);
        var o = Console.Out;
        o.WriteLine($"held-out text {textPath}: {text.Length} chars, {new FileInfo(textPath).Length} bytes, {ids.Length} ids (with BOS); " +
            $"{windows.Length} windows of ≤ {window}, {predicted} predicted tokens; {threads} threads");

        var bf16Logits = new Dictionary<string, float[][]>();
        var q8Logits = new Dictionary<string, float[][]>();
        foreach (string engine in new[] { PeerEngines.Ours, PeerEngines.LlamaCpp })
        {
            bf16Logits[engine] = Evaluate(engine, bf16, threads, windows);
            q8Logits[engine] = Evaluate(engine, q8, threads, windows);
        }
        o.WriteLine("| engine | file | perplexity | mean KL vs same engine's bf16 (nats) | max KL | top-1 agreement vs bf16 |");
        o.WriteLine("| --- | --- | ---: | ---: | ---: | ---: |");
        foreach (string engine in new[] { PeerEngines.Ours, PeerEngines.LlamaCpp })
        {
            string name = PeerEngines.DisplayName(engine);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | bf16 | {Perplexity(bf16Logits[engine], windows):F3} | — | — | — |"));
            (double kl, double maxKl, int same, int n) = Compare(bf16Logits[engine], q8Logits[engine]);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {label} | {Perplexity(q8Logits[engine], windows):F3} | {kl:E3} | {maxKl:E2} | {same}/{n} ({100.0 * same / n:F2} %) |"));
        }
        o.WriteLine();
        o.WriteLine("Across engines on the same file (KL(ours ‖ llama.cpp), every position of every window):");
        o.WriteLine("| file | mean KL (nats) | max KL | top-1 agreement |");
        o.WriteLine("| --- | ---: | ---: | ---: |");
        foreach ((string file, var set) in new[] { ("bf16", bf16Logits), (label, q8Logits) })
        {
            (double kl, double maxKl, int same, int n) = Compare(set[PeerEngines.Ours], set[PeerEngines.LlamaCpp]);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {file} | {kl:E3} | {maxKl:E2} | {same}/{n} ({100.0 * same / n:F2} %) |"));
        }
        return 0;
    }

    /// <summary>BOS + consecutive runs of <paramref name="window"/> − 1 text tokens.</summary>
    private static int[][] Windows(int[] ids, int window)
    {
        var result = new List<int[]>();
        for (int start = 1; start < ids.Length; start += window - 1)
            result.Add([ids[0], .. ids.AsSpan(start, Math.Min(window - 1, ids.Length - start))]);
        return result.ToArray();
    }

    /// <summary>The logits of every position of every window (<c>[window length, vocab]</c> each), one prefill per window.</summary>
    private static float[][] Evaluate(string engineName, string path, int threads, int[][] windows)
    {
        using IPeerEngine engine = PeerEngines.Open(engineName, path, threads, 1024);
        if (engine.VocabSize != DemoModel.Vocab) throw new InvalidOperationException($"{engineName}: vocabulary {engine.VocabSize}");
        return windows.Select(w =>
        {
            engine.Reset();
            var all = new float[w.Length * DemoModel.Vocab];
            engine.Prefill(w, all);
            return all;
        }).ToArray();
    }

    /// <summary>exp(mean negative log-likelihood) of every token after the first of each window.</summary>
    private static double Perplexity(float[][] logits, int[][] windows)
    {
        int vocab = DemoModel.Vocab;
        double nll = 0;
        long n = 0;
        for (int w = 0; w < windows.Length; w++)
            for (int j = 0; j + 1 < windows[w].Length; j++)
            {
                ReadOnlySpan<float> row = logits[w].AsSpan(j * vocab, vocab);
                nll += PeerStats.LogSumExp(row) - row[windows[w][j + 1]];
                n++;
            }
        return Math.Exp(nll / n);
    }

    /// <summary>Mean and max KL(p ‖ q) and top-1 agreement over every position.</summary>
    private static (double MeanKl, double MaxKl, int SameTop1, int Positions) Compare(float[][] p, float[][] q)
    {
        int vocab = DemoModel.Vocab, same = 0, n = 0;
        double sum = 0, max = 0;
        for (int w = 0; w < p.Length; w++)
            for (int j = 0; j < p[w].Length / vocab; j++)
            {
                ReadOnlySpan<float> x = p[w].AsSpan(j * vocab, vocab), y = q[w].AsSpan(j * vocab, vocab);
                double kl = PeerStats.KlDivergence(x, y);
                sum += kl;
                max = Math.Max(max, kl);
                if (Activations.ArgMax(x) == Activations.ArgMax(y)) same++;
                n++;
            }
        return (sum / n, max, same, n);
    }
}
