using System.Globalization;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Peer;

/// <summary>
/// <c>logits-check</c>: llama.cpp and Gemma.NET load the same GGUF files of the demo model (bf16 and Q8_0, written by our
/// converter) and prefill the three golden sequences; the logits of every position are compared between the engines
/// and against transformers' float64 reference. llama.cpp's CPU GELU reads an fp16 table, so differences up to ~0.1 on
/// sensitive logits are expected: the useful numbers are argmax agreement and mean |Δ|.
/// </summary>
internal static class LogitsCheckCommand
{
    /// <summary>Accumulates |a − b| statistics, argmax agreement and KL over rows of logits.</summary>
    private sealed class Diff
    {
        public int Positions, SameArgmax;
        public double Max, Sum, Kl;
        public long Count;

        public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int vocab)
        {
            for (int row = 0; row < a.Length / vocab; row++)
            {
                ReadOnlySpan<float> x = a.Slice(row * vocab, vocab), y = b.Slice(row * vocab, vocab);
                for (int i = 0; i < vocab; i++)
                {
                    double d = Math.Abs((double)x[i] - y[i]);
                    Max = Math.Max(Max, d);
                    Sum += d;
                }
                Count += vocab;
                Positions++;
                if (Activations.ArgMax(x) == Activations.ArgMax(y)) SameArgmax++;
                Kl += PeerStats.KlDivergence(x, y);
            }
        }

        public string Row(string file, string pair) => string.Create(CultureInfo.InvariantCulture,
            $"| {file} | {pair} | {Positions} | {Max:E2} | {Sum / Count:E2} | {Kl / Positions:E2} | {SameArgmax}/{Positions} |");
    }

    public static int Run(PeerArgs a)
    {
        int threads = a.Int("threads", Environment.ProcessorCount);
        string dir = a.String("dir") ?? Path.Combine(Path.GetTempPath(), "gemma-peer");
        (string bf16, string q8) = DemoModel.WriteGgufFiles(dir);
        IReadOnlyList<DemoGolden> goldens = DemoModel.Goldens();
        int vocab = DemoModel.Vocab;
        var o = Console.Out;
        o.WriteLine($"demo model {DemoModel.Folder}; goldens: {string.Join(", ", goldens.Select(g => $"{g.PromptLength}+{g.Ids.Length - g.PromptLength} ids"))}; {threads} threads");
        o.WriteLine("| file | pair | positions | max abs Δ | mean abs Δ | mean KL (nats) | same argmax |");
        o.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach ((string label, string path) in new[] { ("bf16", bf16), ("q8_0", q8) })
        {
            var logits = new Dictionary<string, float[][]>();
            var decoded = new Dictionary<string, float[][]>();
            foreach (string engineName in new[] { PeerEngines.Ours, PeerEngines.LlamaCpp })
            {
                using IPeerEngine engine = PeerEngines.Open(engineName, path, threads, 1024);
                if (engine.VocabSize != vocab) throw new InvalidOperationException($"{engineName}: vocabulary {engine.VocabSize}, expected {vocab}");
                logits[engineName] = goldens.Select(g =>
                {
                    engine.Reset();
                    var all = new float[g.Ids.Length * vocab];
                    engine.Prefill(g.Ids, all);
                    return all;
                }).ToArray();
                // The same positions one token at a time through the KV cache: the path `peer` times as tg.
                decoded[engineName] = goldens.Select(g =>
                {
                    engine.Reset();
                    var all = new float[g.Ids.Length * vocab];
                    for (int i = 0; i < g.Ids.Length; i++) engine.Decode(g.Ids[i]).CopyTo(all.AsSpan(i * vocab, vocab));
                    return all;
                }).ToArray();
            }
            var rows = new (string Pair, Diff Diff, Func<int, float[]> First, Func<int, float[]> Second)[]
            {
                ("ours vs llama.cpp", new Diff(), i => logits[PeerEngines.Ours][i], i => logits[PeerEngines.LlamaCpp][i]),
                ("ours vs float64 reference", new Diff(), i => goldens[i].ReferenceLogits, i => logits[PeerEngines.Ours][i]),
                ("llama.cpp vs float64 reference", new Diff(), i => goldens[i].ReferenceLogits, i => logits[PeerEngines.LlamaCpp][i]),
                ("ours, token by token, vs reference", new Diff(), i => goldens[i].ReferenceLogits, i => decoded[PeerEngines.Ours][i]),
                ("llama.cpp, token by token, vs reference", new Diff(), i => goldens[i].ReferenceLogits, i => decoded[PeerEngines.LlamaCpp][i]),
            };
            foreach (var row in rows)
            {
                for (int i = 0; i < goldens.Count; i++) row.Diff.Add(row.First(i), row.Second(i), vocab);
                o.WriteLine(row.Diff.Row(label, row.Pair));
            }
        }
        o.WriteLine("KL is KL(first ‖ second) for 'ours vs llama.cpp' and KL(reference ‖ engine) against the reference.");
        return 0;
    }
}
