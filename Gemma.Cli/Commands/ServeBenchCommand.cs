using System.CommandLine;
using System.Diagnostics;
using Gemma.Cli.Serve;
using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma bench-serve</c>: throughput of the server's continuous batching and the prefix cache, measured on the
/// scheduler in-process (what HTTP adds is not the question): aggregate decode tokens/s for 1, 2, 4, 8 concurrent
/// streams, and time to first token for a long prompt cold vs. with its prefix cached (docs/server.md).
/// </summary>
internal static class ServeBenchCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var streams = new Option<string>("--streams") { Description = "Concurrent stream counts to measure, comma-separated.", DefaultValueFactory = _ => "1,2,4,8" };
        var gen = new Option<int>("--gen") { Description = "Tokens each stream generates.", DefaultValueFactory = _ => 64 };
        var prompt = new Option<int>("--prompt") { Description = "Prompt tokens per stream in the throughput runs.", DefaultValueFactory = _ => 16 };
        var prefix = new Option<int>("--prefix") { Description = "Length of the shared prefix in the TTFT runs (0 = skip them).", DefaultValueFactory = _ => 1000 };
        var reps = new Option<int>("--reps") { Description = "Repetitions (the best is reported, and the range).", DefaultValueFactory = _ => 3 };
        var command = new Command("bench-serve", "Aggregate decode tok/s of the server's batched scheduler for 1/2/4/8 streams, and cold vs warm (prefix-cached) time to first token.");
        common.AddTo(command);
        foreach (Option o in new Option[] { streams, gen, prompt, prefix, reps }) command.Add(o);
        command.SetAction((parse, ct) => Task.FromResult(CliRunner.Run(() =>
        {
            int[] counts = parse.GetValue(streams)!.Split(',').Select(s => int.TryParse(s, out int n) && n >= 1 ? n : throw new UsageException($"--streams: '{s}' is not a positive count.")).ToArray();
            int genTokens = Math.Max(2, parse.GetValue(gen)), promptTokens = Math.Max(1, parse.GetValue(prompt)), prefixTokens = parse.GetValue(prefix), repeat = Math.Max(1, parse.GetValue(reps));
            using GemmaModel model = common.Load(parse);
            int context = parse.GetValue(common.Context) ?? Math.Min(model.Config.MaxPositionEmbeddings, Math.Max(2048, prefixTokens + 64));
            Console.WriteLine($"model {model.Location}, {parse.GetValue(common.Threads)} threads, context {context}, cpu {CpuName()}");
            Dictionary<int, float> banEnd = BanEnd(model);

            Console.WriteLine($"| streams | aggregate tok/s (best of {repeat}) | range | per stream | vs 1 stream |");
            Console.WriteLine("| ---: | ---: | ---: | ---: | ---: |");
            double single = 0;
            foreach (int n in counts)
            {
                var rates = new List<double>();
                using var scheduler = new BatchScheduler(model, new ServerOptions { Parallel = n, ExtraCaches = 0, ContextLength = context, QueueLength = n }, new ServerMetrics());
                Run(scheduler, Prompts(model, n, promptTokens, 999), 4, banEnd);  // warm-up: JIT, page faults of the mapping
                for (int r = 0; r < repeat; r++)
                {
                    // All streams are queued at once; the wall time covers their (short) prompts and every token.
                    var clock = Stopwatch.StartNew();
                    GenerationResult[] results = Run(scheduler, Prompts(model, n, promptTokens, r), genTokens, banEnd);
                    rates.Add(results.Sum(x => x.CompletionTokens) / clock.Elapsed.TotalSeconds);
                }
                double best = rates.Max();
                if (n == counts[0]) single = best / n;
                Console.WriteLine($"| {n} | {best:F2} | {rates.Min():F2}–{rates.Max():F2} | {best / n:F2} | {best / single:F2}× |");
            }

            if (prefixTokens > 0)
            {
                Console.WriteLine();
                Console.WriteLine($"| prefix {prefixTokens} tokens | cold TTFT | warm TTFT (prefix cached) | warm / cold | cached tokens |");
                Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
                using var scheduler = new BatchScheduler(model, new ServerOptions { Parallel = 1, ExtraCaches = 1, ContextLength = context }, new ServerMetrics());
                for (int r = 0; r < repeat; r++)
                {
                    int[] shared = Prompts(model, 1, prefixTokens, 100 + r)[0];
                    GenerationResult cold = Run(scheduler, [[.. shared, 300]], 1, banEnd)[0];
                    GenerationResult warm = Run(scheduler, [[.. shared, 301]], 1, banEnd)[0];
                    double c = cold.TimeToFirstToken!.Value.TotalMilliseconds, w = warm.TimeToFirstToken!.Value.TotalMilliseconds;
                    Console.WriteLine($"| run {r + 1} | {c:F0} ms | {w:F1} ms | {100 * w / c:F2} % | {warm.CachedTokens} |");
                }
            }
            return ExitCodes.Success;
        })));
        return command;
    }

    /// <summary>Runs the prompts concurrently (greedy, end ids banned so each makes exactly <paramref name="tokens"/>).</summary>
    private static GenerationResult[] Run(BatchScheduler scheduler, int[][] prompts, int tokens, Dictionary<int, float> banEnd)
    {
        var options = SamplingOptions.Greedy with { MaxTokens = tokens, LogitBias = banEnd };
        var requests = prompts.Select(p => new GenerationRequest(p, options, CancellationToken.None, TimeSpan.FromHours(1))).ToArray();
        foreach (GenerationRequest r in requests)
            if (!scheduler.TryEnqueue(r)) throw new InvalidOperationException("queue full");
        return requests.Select(r =>
        {
            GenerationResult result = r.Completion.GetAwaiter().GetResult();
            return result.Stop is StopKind.Length ? result : throw new GemmaException($"bench request ended with {result.Stop}: {result.Error}");
        }).ToArray();
    }

    /// <summary>BOS + deterministic pseudo-random ids, different for each stream (no prefix shared by accident).</summary>
    private static int[][] Prompts(GemmaModel model, int n, int length, int seed) =>
        Enumerable.Range(0, n).Select(i =>
        {
            var rng = new Random(seed * 1000 + i);
            int[] ids = new int[length];
            ids[0] = model.Tokenizer?.BosId ?? 2;
            for (int j = 1; j < length; j++) ids[j] = rng.Next(10, Math.Min(model.Config.VocabSize, 20000));
            return ids;
        }).ToArray();

    private static Dictionary<int, float> BanEnd(GemmaModel model)
    {
        GemmaTokenizer t = model.RequireTokenizer();
        var ids = new HashSet<int>(model.Config.EosTokenIds) { t.EosId, t.EndOfTurnId };
        return ids.Where(i => i >= 0 && i < model.Config.VocabSize).ToDictionary(i => i, _ => float.NegativeInfinity);
    }

    private static string CpuName()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? "unknown";
        }
        catch (IOException) { return "unknown"; }
    }
}
