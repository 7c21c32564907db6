using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gemma.Cli.Bench;
using Gemma.Core;
using System.Numerics.Tensors;
using Gemma.Kernels;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma bench</c>: llama-bench-style prefill (pp) and decode (tg) throughput, time to first token and peak RSS,
/// stated against this machine's own limits (read bandwidth and f32 FMA peak, measured by the same run).
/// Prompt tokens are deterministic pseudo-random ids; decode is greedy (the sampler's cost is not the model's).
/// </summary>
internal static class BenchCommand
{
    /// <summary>Runtime, activations, tokenizer and GC heap on top of weights and KV cache (the issue-10 budget).</summary>
    internal const double RssOverheadMiB = 150;

    public static Command Create()
    {
        var common = new CommonOptions();
        var prompt = new Option<int>("--prompt", "-p") { Description = "Prompt tokens to prefill.", DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen", "-g") { Description = "Tokens to decode.", DefaultValueFactory = _ => 128 };
        var reps = new Option<int>("--reps", "-r") { Description = "Repetitions (mean ± sd over them).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table." };
        var longContext = new Option<int>("--long-context")
        {
            Description = "Also time decode at this position against decode at position 100 (the cache is filled with synthetic keys/values instead of a prefill); 0 = off.",
            DefaultValueFactory = _ => 0,
        };
        var concurrent = new Option<int>("--concurrent") { Description = "Also decode --gen tokens in this many contexts at once (aggregate tok/s); 0 = off.", DefaultValueFactory = _ => 0 };
        var scaling = new Option<bool>("--scaling") { Description = "Also run prefill and decode with 1 thread (thread scaling)." };
        var bandwidthMiB = new Option<int>("--bandwidth-mib") { Description = "Buffer for the read-bandwidth probe; make it several times the last-level cache.", DefaultValueFactory = _ => 2048 };
        var noLimits = new Option<bool>("--no-limits") { Description = "Skip measuring the read bandwidth and FMA peak." };
        var roofline = new Option<string?>("--roofline") { Description = "Write a roofline picture (SVG) of this run to this file." };
        var profile = new Option<bool>("--profile")
        {
            Description = "Also profile one prefill and the decode steps through the model: per phase (norms, q/k/v, attention, MLP, head, …) wall and CPU ms per thread, idle time and each matmul's GB/s or GFLOP/s against the limits.",
        };
        var rooflineAdd = new Option<string[]>("--roofline-add") { Description = "Earlier `gemma bench --json` outputs whose points join the picture.", AllowMultipleArgumentsPerToken = true };
        prompt.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--prompt must be at least 1."); });
        gen.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--gen must be at least 1."); });
        reps.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--reps must be at least 1."); });
        longContext.Validators.Add(r => { if (r.GetValueOrDefault<int>() is < 0 or (> 0 and <= 100)) r.AddError("--long-context must be 0 (off) or above 100."); });
        concurrent.Validators.Add(r => { if (r.GetValueOrDefault<int>() is < 0 or > 64) r.AddError("--concurrent must be in [0, 64]."); });
        bandwidthMiB.Validators.Add(r => { if (r.GetValueOrDefault<int>() is < 4 or > 65536) r.AddError("--bandwidth-mib must be in [4, 65536]."); });
        var command = new Command("bench", "Measure prefill and decode speed (tokens/s), time to first token and peak memory against the machine's read bandwidth and FMA peak.")
        {
            prompt, gen, reps, json, longContext, concurrent, scaling, bandwidthMiB, noLimits, roofline, rooflineAdd, profile,
        };
        common.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            int nPrompt = parse.GetValue(prompt), nGen = parse.GetValue(gen), nReps = parse.GetValue(reps);
            int longPosition = parse.GetValue(longContext);
            bool asJson = parse.GetValue(json);
            string? svgPath = parse.GetValue(roofline);
            var added = new List<RooflinePoint>();
            foreach (string file in parse.GetValue(rooflineAdd) ?? [])
                added.AddRange(ReadPoints(file));

            var load = Stopwatch.StartNew();
            using GemmaModel model = common.Load(parse);
            double loadMs = load.Elapsed.TotalMilliseconds;
            var random = new Random(1234);
            int[] tokens = Enumerable.Range(0, nPrompt).Select(i => i == 0 ? model.Config.BosTokenId : random.Next(3, model.Config.VocabSize)).ToArray();
            Log(asJson, $"model {model.Location}, {model.Options.Threads} threads");

            Speeds main = RunPrefillDecode(model, tokens, nGen, nReps, asJson, out long kvBytes, out int kvElementBytes);
            double rssMib = PeakRssMiB(); // before the probes below, whose buffers would count
            long bytes = model.Weights.Source.Tensors.Values.Sum(t => t.ByteLength);
            double budgetMib = (bytes + kvBytes) / 1048576.0 + RssOverheadMiB;

            LongContext? lc = longPosition > 0 ? RunLongContext(model, tokens[1], longPosition, Math.Min(nGen, 32), nReps, asJson) : null;
            int nConcurrent = parse.GetValue(concurrent);
            double concurrentTps = nConcurrent > 0 ? RunConcurrent(model, tokens, nGen, nConcurrent, nReps, asJson) : 0;
            Speeds? single = null;
            if (parse.GetValue(scaling) && model.Options.Threads > 1)
            {
                using GemmaModel one = GemmaModel.Load(model.Location, model.Options with { Threads = 1 });
                single = RunPrefillDecode(one, tokens, nGen, 1, asJson, out _, out _);
            }

            Limits? limits = null;
            if (!parse.GetValue(noLimits))
            {
                Log(asJson, "measuring read bandwidth and FMA peak…");
                limits = MeasureLimits(model.Options.Threads, parse.GetValue(bandwidthMiB) * (1L << 20));
            }

            string? breakdown = null;
            if (parse.GetValue(profile))
            {
                Log(asJson, "profiling prefill and decode…");
                using var tables = new StringWriter(CultureInfo.InvariantCulture);
                StepBreakdown.Run(model, tokens, nGen, nReps, limits?.ReadGBPerSecond ?? double.NaN, limits?.FmaGFlopPerSecond ?? double.NaN, tables);
                breakdown = tables.ToString();
                if (asJson) Console.Error.Write(breakdown);
            }

            var cost = ModelCost.Of(model, kvElementBytes);
            int decodeMid = nPrompt + nGen / 2;
            double decodeBytes = cost.DecodeBytesPerToken(decodeMid), decodeFlops = cost.DecodeFlopsPerToken(decodeMid);
            double prefillFlops = cost.PrefillFlopsPerToken(0, nPrompt);
            double prefillBytes = cost.PrefillBytesPerToken(nPrompt, model.Options.PrefillChunk);
            string weights = string.Join("+", model.Weights.Source.Tensors.Values.Select(t => t.Type.ToString()).Distinct());
            string matrixType = model.Weights.Layers[0].QProj.Type.ToString();
            var points = new List<RooflinePoint>
            {
                new($"{matrixType} decode @{decodeMid}", decodeFlops / decodeBytes, Mean(main.Tg) * decodeFlops / 1e9),
                new($"{matrixType} prefill {nPrompt}", prefillFlops / prefillBytes, Mean(main.Pp) * prefillFlops / 1e9),
            };
            if (lc != null)
            {
                double f = cost.DecodeFlopsPerToken(lc.LongPosition), b = cost.DecodeBytesPerToken(lc.LongPosition);
                points.Add(new($"{matrixType} decode @{lc.LongPosition}", f / b, lc.LongTokensPerSecond * f / 1e9));
            }

            if (svgPath != null)
            {
                if (limits == null) throw new UsageException("--roofline needs the measured limits (drop --no-limits).");
                var ceilings = new List<RooflineCeiling>
                {
                    new($"{limits.Threads} threads", limits.ReadGBPerSecond, limits.FmaGFlopPerSecond, false),
                };
                if (limits.Threads > 1) ceilings.Add(new("1 thread", limits.ReadGBPerSecond1, limits.FmaGFlopPerSecond1, true));
                string cpu = CpuModel();
                string title = $"Gemma.NET roofline — {cpu}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC";
                File.WriteAllText(svgPath, RooflineChart.Render(title, ceilings, [.. added, .. points]));
                Log(asJson, $"wrote {svgPath}");
            }

            if (asJson)
            {
                using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                w.WriteStartObject();
                w.WriteString("model", model.Location);
                w.WriteString("weights", weights);
                w.WriteString("cpu", CpuModel());
                w.WriteString("kernel_path", KernelPath.Current);
                w.WriteNumber("threads", model.Options.Threads);
                w.WriteNumber("prompt_tokens", nPrompt);
                w.WriteNumber("gen_tokens", nGen);
                w.WriteNumber("reps", nReps);
                w.WriteNumber("prefill_tokens_per_s", Math.Round(Mean(main.Pp), 3));
                w.WriteNumber("prefill_tokens_per_s_sd", Math.Round(Sd(main.Pp), 3));
                w.WriteNumber("decode_tokens_per_s", Math.Round(Mean(main.Tg), 3));
                w.WriteNumber("decode_tokens_per_s_sd", Math.Round(Sd(main.Tg), 3));
                w.WriteNumber("ttft_ms", Math.Round(Mean(main.Ttft), 1));
                w.WriteNumber("peak_rss_mib", Math.Round(rssMib, 1));
                w.WriteNumber("rss_budget_mib", Math.Round(budgetMib, 1));
                w.WriteBoolean("rss_within_budget", rssMib <= budgetMib);
                w.WriteNumber("load_ms", Math.Round(loadMs, 1));
                w.WriteNumber("weights_gib", Math.Round(bytes / (double)(1L << 30), 3));
                w.WriteNumber("kv_bytes_per_element", kvElementBytes);
                w.WriteNumber("kv_cache_mib", Math.Round(kvBytes / 1048576.0, 1));
                w.WriteNumber("decode_bytes_per_token", Math.Round(decodeBytes));
                w.WriteNumber("decode_flops_per_token", Math.Round(decodeFlops));
                w.WriteNumber("prefill_flops_per_token", Math.Round(prefillFlops));
                if (limits != null)
                {
                    w.WriteNumber("read_gb_per_s", Math.Round(limits.ReadGBPerSecond, 2));
                    w.WriteNumber("fma_gflop_per_s", Math.Round(limits.FmaGFlopPerSecond, 1));
                    w.WriteNumber("read_gb_per_s_1t", Math.Round(limits.ReadGBPerSecond1, 2));
                    w.WriteNumber("fma_gflop_per_s_1t", Math.Round(limits.FmaGFlopPerSecond1, 1));
                    w.WriteNumber("decode_roofline_fraction", Math.Round(Roofline.DecodeFraction(Mean(main.Tg), decodeBytes, limits.ReadGBPerSecond), 4));
                    w.WriteNumber("prefill_peak_fraction", Math.Round(Roofline.PrefillFraction(Mean(main.Pp), prefillFlops, limits.FmaGFlopPerSecond), 4));
                }
                if (lc != null)
                {
                    w.WriteNumber("decode_short_position", LongContext.ShortPosition);
                    w.WriteNumber("decode_short_tokens_per_s", Math.Round(lc.ShortTokensPerSecond, 3));
                    w.WriteNumber("decode_long_position", lc.LongPosition);
                    w.WriteNumber("decode_long_tokens_per_s", Math.Round(lc.LongTokensPerSecond, 3));
                    w.WriteNumber("long_context_ratio", Math.Round(lc.LongTokensPerSecond / lc.ShortTokensPerSecond, 4));
                    w.WriteNumber("decode_short_cpu_ms_per_token", Math.Round(lc.ShortCpuMsPerToken, 2));
                    w.WriteNumber("decode_long_cpu_ms_per_token", Math.Round(lc.LongCpuMsPerToken, 2));
                    w.WriteNumber("long_context_cpu_ratio", Math.Round(lc.ShortCpuMsPerToken / lc.LongCpuMsPerToken, 4));
                    if (limits != null)
                        w.WriteNumber("decode_long_roofline_fraction", Math.Round(Roofline.DecodeFraction(lc.LongTokensPerSecond, cost.DecodeBytesPerToken(lc.LongPosition), limits.ReadGBPerSecond), 4));
                }
                if (nConcurrent > 0)
                {
                    w.WriteNumber("concurrent_contexts", nConcurrent);
                    w.WriteNumber("concurrent_decode_tokens_per_s", Math.Round(concurrentTps, 3));
                }
                if (single != null)
                {
                    w.WriteNumber("prefill_tokens_per_s_1t", Math.Round(Mean(single.Pp), 3));
                    w.WriteNumber("decode_tokens_per_s_1t", Math.Round(Mean(single.Tg), 3));
                }
                w.WriteStartArray("roofline_points");
                foreach (RooflinePoint p in points)
                {
                    w.WriteStartObject();
                    w.WriteString("label", p.Label);
                    w.WriteNumber("flop_per_byte", Math.Round(p.FlopPerByte, 4));
                    w.WriteNumber("gflop_per_s", Math.Round(p.GFlopPerSecond, 3));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
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
            o.WriteLine($"{head} | pp{nPrompt} | {Mean(main.Pp):F2} ± {Sd(main.Pp):F2} |");
            o.WriteLine($"{head} | tg{nGen} | {Mean(main.Tg):F2} ± {Sd(main.Tg):F2} |");
            if (single != null)
            {
                o.WriteLine($"{head.Replace($"| {model.Options.Threads}", "| 1")} | pp{nPrompt} | {Mean(single.Pp):F2} |");
                o.WriteLine($"{head.Replace($"| {model.Options.Threads}", "| 1")} | tg{nGen} | {Mean(single.Tg):F2} |");
            }
            o.WriteLine($"kernels: {KernelPath.Current}");
            o.WriteLine($"time to first token {Mean(main.Ttft):F0} ms (prefill of {nPrompt}), peak RSS {rssMib:F0} MiB (budget weights + KV + {RssOverheadMiB:F0} = {budgetMib:F0} MiB), load {loadMs:F0} ms");
            if (limits != null)
            {
                o.WriteLine($"machine: {CpuModel()}; read {limits.ReadGBPerSecond:F1} GB/s ({limits.ReadGBPerSecond1:F1} with 1 thread), f32 FMA peak {limits.FmaGFlopPerSecond:F0} GFLOP/s ({limits.FmaGFlopPerSecond1:F0} with 1 thread)");
                o.WriteLine($"decode: {decodeBytes / 1e9:F3} GB read per token → {Roofline.DecodeFraction(Mean(main.Tg), decodeBytes, limits.ReadGBPerSecond):P1} of the read roofline");
                o.WriteLine($"prefill: {prefillFlops / 1e9:F3} GFLOP per token → {Roofline.PrefillFraction(Mean(main.Pp), prefillFlops, limits.FmaGFlopPerSecond):P1} of the FMA peak");
            }
            if (nConcurrent > 0)
                o.WriteLine($"{nConcurrent} contexts decoding at once: {concurrentTps:F2} tok/s in total");
            if (lc != null)
                o.WriteLine($"long context: decode {lc.ShortTokensPerSecond:F2} tok/s at position {LongContext.ShortPosition}, {lc.LongTokensPerSecond:F2} at {lc.LongPosition} ({lc.LongTokensPerSecond / lc.ShortTokensPerSecond:P0}); CPU time per token {lc.ShortCpuMsPerToken:F0} vs {lc.LongCpuMsPerToken:F0} ms ({lc.ShortCpuMsPerToken / lc.LongCpuMsPerToken:P0})");
            if (breakdown != null) o.Write(breakdown);
            return ExitCodes.Success;
        }));
        return command;
    }

    private sealed record Speeds(List<double> Pp, List<double> Tg, List<double> Ttft);

    private sealed record LongContext(double ShortTokensPerSecond, int LongPosition, double LongTokensPerSecond, double ShortCpuMsPerToken, double LongCpuMsPerToken)
    {
        public const int ShortPosition = 100;
    }

    private sealed record Limits(int Threads, double ReadGBPerSecond, double FmaGFlopPerSecond, double ReadGBPerSecond1, double FmaGFlopPerSecond1);

    private static Speeds RunPrefillDecode(GemmaModel model, int[] tokens, int nGen, int nReps, bool quiet, out long kvBytes, out int kvElementBytes)
    {
        int nPrompt = tokens.Length;
        using InferenceContext ctx = model.CreateContext(nPrompt + nGen);
        var speeds = new Speeds([], [], []);
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
            if (rep < 0)
            {
                Log(quiet, $"{model.Options.Threads} threads, warm-up: pp {nPrompt / prefill:F1} tok/s, tg {nGen / decode:F2} tok/s (not counted)");
                continue;
            }
            speeds.Pp.Add(nPrompt / prefill); speeds.Tg.Add(nGen / decode); speeds.Ttft.Add(prefill * 1000);
            Log(quiet, $"{model.Options.Threads} threads, rep {rep + 1}/{nReps}: pp {nPrompt / prefill:F1} tok/s, tg {nGen / decode:F2} tok/s");
        }
        kvBytes = ctx.Cache.BytesFor(nPrompt + nGen);
        kvElementBytes = ctx.Cache.BytesPerElement;
        return speeds;
    }

    /// <summary>
    /// Decode speed at position 100 and at <paramref name="position"/>, with the cache filled synthetically up to
    /// there: best wall-clock tokens/s and least process CPU time per token over <paramref name="reps"/> (on a shared
    /// machine the CPU time shows the work even when other processes take the cores; spinning workers add to it).
    /// </summary>
    private static LongContext RunLongContext(GemmaModel model, int token, int position, int steps, int reps, bool quiet)
    {
        using InferenceContext ctx = model.CreateContext(position + steps);
        using var process = Process.GetCurrentProcess();
        (double Tps, double CpuMs) Time(int at)
        {
            ctx.Cache.FillForBenchmark(at);
            double best = 0, cpu = double.MaxValue;
            for (int rep = -1; rep < reps; rep++)
            {
                if (ctx.Cache.CanTruncateTo(at)) ctx.Cache.Truncate(at);
                else ctx.Cache.FillForBenchmark(at);
                int next = token;
                process.Refresh();
                TimeSpan cpu0 = process.TotalProcessorTime;
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < steps; i++) next = TensorPrimitives.IndexOfMax(ctx.Decode(next));
                double tps = steps / Stopwatch.GetElapsedTime(t0).TotalSeconds;
                process.Refresh();
                double cpuMs = (process.TotalProcessorTime - cpu0).TotalMilliseconds / steps;
                if (rep >= 0) { best = Math.Max(best, tps); cpu = Math.Min(cpu, cpuMs); }
            }
            Log(quiet, $"decode at position {at}: {best:F2} tok/s, {cpu:F1} CPU ms per token (best of {reps})");
            return (best, cpu);
        }
        var (shortTps, shortCpu) = Time(LongContext.ShortPosition);
        var (longTps, longCpu) = Time(position);
        return new LongContext(shortTps, position, longTps, shortCpu, longCpu);
    }

    /// <summary>
    /// Aggregate decode tokens/s of <paramref name="contexts"/> sequences decoding at the same time, each on its own
    /// thread after a short prefill (what a server with several generators does); best of <paramref name="reps"/>.
    /// </summary>
    private static double RunConcurrent(GemmaModel model, int[] tokens, int nGen, int contexts, int reps, bool quiet)
    {
        int[] prompt = tokens[..Math.Min(tokens.Length, 16)];
        var ctxs = Enumerable.Range(0, contexts).Select(_ => model.CreateContext(prompt.Length + nGen)).ToArray();
        try
        {
            double best = 0;
            for (int rep = -1; rep < reps; rep++)
            {
                foreach (InferenceContext c in ctxs) { c.Reset(); c.Prefill(prompt); }
                using var start = new Barrier(contexts + 1);
                var threads = ctxs.Select(c => new Thread(() =>
                {
                    int next = prompt[^1];
                    start.SignalAndWait();
                    for (int i = 0; i < nGen; i++) next = TensorPrimitives.IndexOfMax(c.Decode(next));
                })).ToArray();
                foreach (Thread t in threads) t.Start();
                start.SignalAndWait();
                long t0 = Stopwatch.GetTimestamp();
                foreach (Thread t in threads) t.Join();
                double tps = contexts * nGen / Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (rep >= 0) best = Math.Max(best, tps);
            }
            Log(quiet, $"{contexts} concurrent contexts: {best:F2} tok/s in total (best of {reps})");
            return best;
        }
        finally
        {
            foreach (InferenceContext c in ctxs) c.Dispose();
        }
    }

    private static Limits MeasureLimits(int threads, long bandwidthBytes)
    {
        double read1 = MachineLimits.ReadBandwidth(null, bandwidthBytes);
        double fma1 = MachineLimits.FmaPeak(null);
        if (threads == 1) return new Limits(1, read1, fma1, read1, fma1);
        using var pool = new WorkerPool(threads);
        return new Limits(threads, MachineLimits.ReadBandwidth(pool, bandwidthBytes), MachineLimits.FmaPeak(pool), read1, fma1);
    }

    /// <summary>The <c>roofline_points</c> of an earlier <c>gemma bench --json</c> output.</summary>
    internal static List<RooflinePoint> ReadPoints(string file)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(file));
            if (!doc.RootElement.TryGetProperty("roofline_points", out JsonElement array) || array.ValueKind != JsonValueKind.Array)
                throw new UsageException($"{file} has no roofline_points array (is it the output of `gemma bench --json`?).");
            return array.EnumerateArray().Select(p => new RooflinePoint(
                p.GetProperty("label").GetString() ?? "",
                p.GetProperty("flop_per_byte").GetDouble(),
                p.GetProperty("gflop_per_s").GetDouble())).ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new UsageException($"{file} is not a `gemma bench --json` output: {e.Message}");
        }
    }

    private static void Log(bool quiet, string message)
    {
        if (!quiet) Console.Error.WriteLine(message);
    }

    private static double Mean(List<double> x) => x.Average();

    private static double Sd(List<double> x)
    {
        if (x.Count < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Count - 1));
    }

    /// <summary>The CPU's model name from /proc/cpuinfo (or the architecture where there is none).</summary>
    internal static string CpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int i and > 0)
                    return $"{line[(i + 1)..].Trim()} ×{Environment.ProcessorCount}";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} ×{Environment.ProcessorCount}";
    }

    /// <summary>Peak resident set size (VmHWM of /proc/self/status on Linux; the process's peak working set elsewhere).</summary>
    internal static double PeakRssMiB()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0;
    }
}
