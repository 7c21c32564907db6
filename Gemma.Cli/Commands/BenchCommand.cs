using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Gemma.Core;
using System.Numerics.Tensors;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma bench</c>: llama-bench-style prefill (pp) and decode (tg) throughput, time to first token and peak RSS.
/// Prompt tokens are deterministic pseudo-random ids; decode is greedy (the sampler's cost is not the model's).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var prompt = new Option<int>("--prompt", "-p") { Description = "Prompt tokens to prefill.", DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen", "-g") { Description = "Tokens to decode.", DefaultValueFactory = _ => 128 };
        var reps = new Option<int>("--reps", "-r") { Description = "Repetitions (mean ± sd over them).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table." };
        prompt.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--prompt must be at least 1."); });
        gen.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--gen must be at least 1."); });
        reps.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--reps must be at least 1."); });
        var command = new Command("bench", "Measure prefill and decode speed (tokens/s), time to first token and peak memory.")
        {
            prompt, gen, reps, json,
        };
        common.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            int nPrompt = parse.GetValue(prompt), nGen = parse.GetValue(gen), nReps = parse.GetValue(reps);
            var load = Stopwatch.StartNew();
            using GemmaModel model = common.Load(parse);
            double loadMs = load.Elapsed.TotalMilliseconds;
            using InferenceContext ctx = model.CreateContext(nPrompt + nGen);
            var random = new Random(1234);
            int[] tokens = Enumerable.Range(0, nPrompt).Select(i => i == 0 ? model.Config.BosTokenId : random.Next(3, model.Config.VocabSize)).ToArray();

            var pp = new List<double>(); var tg = new List<double>(); var ttft = new List<double>();
            for (int rep = -1; rep < nReps; rep++) // rep −1 warms up (JIT, page faults of the mapping)
            {
                ctx.Reset();
                var clock = Stopwatch.StartNew();
                ReadOnlySpan<float> logits = ctx.Prefill(tokens);
                int next = TensorPrimitives.IndexOfMax(logits);
                double prefill = clock.Elapsed.TotalSeconds;
                clock.Restart();
                for (int i = 0; i < nGen; i++) next = TensorPrimitives.IndexOfMax(ctx.Decode(next));
                double decode = clock.Elapsed.TotalSeconds;
                if (rep < 0) continue;
                pp.Add(nPrompt / prefill); tg.Add(nGen / decode); ttft.Add(prefill * 1000);
                if (!parse.GetValue(json)) Console.Error.WriteLine($"rep {rep + 1}/{nReps}: pp {nPrompt / prefill:F1} tok/s, tg {nGen / decode:F2} tok/s");
            }
            double rssMib = PeakRssMiB();
            string weights = string.Join("+", model.Weights.Source.Tensors.Values.Select(t => t.Type.ToString()).Distinct());
            long bytes = model.Weights.Source.Tensors.Values.Sum(t => t.ByteLength);
            if (parse.GetValue(json))
            {
                using var w = new Utf8JsonWriter(Console.OpenStandardOutput());
                w.WriteStartObject();
                w.WriteString("model", model.Location);
                w.WriteString("weights", weights);
                w.WriteNumber("threads", model.Options.Threads);
                w.WriteNumber("prompt_tokens", nPrompt);
                w.WriteNumber("gen_tokens", nGen);
                w.WriteNumber("reps", nReps);
                w.WriteNumber("prefill_tokens_per_s", Math.Round(Mean(pp), 3));
                w.WriteNumber("prefill_tokens_per_s_sd", Math.Round(Sd(pp), 3));
                w.WriteNumber("decode_tokens_per_s", Math.Round(Mean(tg), 3));
                w.WriteNumber("decode_tokens_per_s_sd", Math.Round(Sd(tg), 3));
                w.WriteNumber("ttft_ms", Math.Round(Mean(ttft), 1));
                w.WriteNumber("peak_rss_mib", Math.Round(rssMib, 1));
                w.WriteNumber("load_ms", Math.Round(loadMs, 1));
                w.WriteNumber("weights_gib", Math.Round(bytes / (double)(1L << 30), 3));
                w.WriteEndObject();
                w.Flush();
                Console.Out.WriteLine();
                return ExitCodes.Success;
            }
            var o = Console.Out;
            o.WriteLine($"| model | size | params | weights | threads | test | t/s |");
            o.WriteLine($"| --- | ---: | ---: | --- | ---: | ---: | ---: |");
            string name = Path.GetFileName(model.Location.TrimEnd('/'));
            long parameters = model.Weights.Source.Tensors.Values.Sum(t => t.ElementCount);
            string head = $"| {name} | {bytes / (double)(1L << 30):F2} GiB | {parameters / 1e9:F2} B | {weights} | {model.Options.Threads}";
            o.WriteLine($"{head} | pp{nPrompt} | {Mean(pp):F2} ± {Sd(pp):F2} |");
            o.WriteLine($"{head} | tg{nGen} | {Mean(tg):F2} ± {Sd(tg):F2} |");
            o.WriteLine($"time to first token {Mean(ttft):F0} ms (prefill of {nPrompt}), peak RSS {rssMib:F0} MiB, load {loadMs:F0} ms");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static double Mean(List<double> x) => x.Average();

    private static double Sd(List<double> x)
    {
        if (x.Count < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Count - 1));
    }

    /// <summary>Peak resident set size (VmHWM of /proc/self/status on Linux; the process's peak working set elsewhere).</summary>
    internal static double PeakRssMiB()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim()) / 1024.0;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
    }
}
