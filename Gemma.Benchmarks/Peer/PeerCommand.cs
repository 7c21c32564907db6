using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gemma.Core.Formats.Gguf;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Peer;

/// <summary>What one engine measured in one <c>peer-child</c> process.</summary>
internal sealed record EngineRun(
    string Engine, string Model, int Threads, int PromptTokens, int GenTokens, int Reps, long IdsChecksum,
    double[] PrefillTokensPerS, double[] DecodeTokensPerS, double[] TtftMs,
    double PrefillMean, double PrefillSd, double DecodeMean, double DecodeSd, double TtftMeanMs,
    double BaselineRssMib, double PeakRssMib, double LoadMs, int[] GreedyIds, double LoadAverageStart, double LoadAverageEnd,
    string Build);

/// <summary>
/// <c>peer</c>: llama-bench-style pp/tg of Gemma.NET and of llama.cpp on the same GGUF file, same thread count and the
/// same prompt ids. Each engine runs in its own child process (<c>peer-child</c>) of this executable, so its peak RSS
/// (VmHWM) is its own; the parent collects their JSON and prints both with the ours/llama.cpp ratio.
/// </summary>
internal static class PeerCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static int RunParent(PeerArgs a)
    {
        string model = Path.GetFullPath(a.Require("model"));
        int nPrompt = a.Int("prompt", 512), nGen = a.Int("gen", 128), threads = a.Int("threads", Environment.ProcessorCount), reps = a.Int("reps", 3);
        (int bos, int vocab) = ReadBosAndVocab(model);
        string common = string.Create(CultureInfo.InvariantCulture,
            $"--model \"{model}\" --prompt {nPrompt} --gen {nGen} --threads {threads} --reps {reps} --bos {bos} --vocab {vocab}");
        var runs = new List<EngineRun>();
        foreach (string engine in new[] { PeerEngines.Ours, PeerEngines.LlamaCpp })
        {
            Console.Error.WriteLine($"[{PeerEngines.DisplayName(engine)}] child process, load average {PeerStats.LoadAverage():F2}");
            runs.Add(RunChild($"peer-child --engine {engine} {common}"));
        }
        EngineRun ours = runs[0], theirs = runs[1];
        if (ours.IdsChecksum != theirs.IdsChecksum) throw new InvalidOperationException("the two children used different prompt ids");
        int sameGreedy = ours.GreedyIds.Zip(theirs.GreedyIds).TakeWhile(p => p.First == p.Second).Count();
        if (a.Flag("json"))
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                ours, llamacpp = theirs,
                ratio_prefill = ours.PrefillMean / theirs.PrefillMean,
                ratio_decode = ours.DecodeMean / theirs.DecodeMean,
                same_greedy_prefix = sameGreedy,
            }, Json));
            return 0;
        }
        var o = Console.Out;
        o.WriteLine($"model {model}, {threads} threads, prompt {nPrompt} ids (BOS {bos} + Random(1234) over [3, {vocab})), gen {nGen} greedy, {reps} reps after 1 warm-up");
        o.WriteLine($"| engine | pp{nPrompt} tok/s | tg{nGen} tok/s | ttft ms | peak RSS MiB (runtime before load) | load ms |");
        o.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (EngineRun r in runs)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {PeerEngines.DisplayName(r.Engine)} | {r.PrefillMean:F2} ± {r.PrefillSd:F2} | {r.DecodeMean:F2} ± {r.DecodeSd:F2} | {r.TtftMeanMs:F0} | {r.PeakRssMib:F0} ({r.BaselineRssMib:F0}) | {r.LoadMs:F0} |"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| ours / llama.cpp | {ours.PrefillMean / theirs.PrefillMean:F2}× | {ours.DecodeMean / theirs.DecodeMean:F2}× | {ours.TtftMeanMs / theirs.TtftMeanMs:F2}× | {ours.PeakRssMib / theirs.PeakRssMib:F2}× | |"));
        foreach (EngineRun r in runs) o.WriteLine($"{PeerEngines.DisplayName(r.Engine)}: {r.Build}");
        o.WriteLine($"greedy continuations agree on the first {sameGreedy} of {Math.Min(ours.GreedyIds.Length, theirs.GreedyIds.Length)} tokens; load average {ours.LoadAverageStart:F2} → {theirs.LoadAverageEnd:F2}");
        return 0;
    }

    private static (int Bos, int Vocab) ReadBosAndVocab(string model)
    {
        if (!File.Exists(model)) throw new ArgumentException($"{model}: llama.cpp needs a GGUF file");
        using GgufFile f = GgufFile.Open(model);
        int bos = f.Metadata.TryGetUInt32("tokenizer.ggml.bos_token_id", out uint b) ? (int)b : 2;
        return (bos, checked((int)f.GetTensor("token_embd.weight").RowCount));
    }

    private static EngineRun RunChild(string arguments)
    {
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") arguments = $"\"{typeof(PeerCommand).Assembly.Location}\" {arguments}";
        var start = new ProcessStartInfo(exe, arguments) { RedirectStandardOutput = true, UseShellExecute = false };
        using Process child = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {exe}");
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0) throw new InvalidOperationException($"child '{arguments}' exited with {child.ExitCode}");
        return JsonSerializer.Deserialize<EngineRun>(output.Trim().Split('\n')[^1], Json)
            ?? throw new InvalidOperationException("child printed no result");
    }

    /// <summary>The <c>gemma bench</c> prompt: BOS, then ids from <c>new Random(1234)</c> over [3, vocab).</summary>
    public static int[] PromptIds(int n, int bos, int vocab)
    {
        var random = new Random(1234);
        return Enumerable.Range(0, n).Select(i => i == 0 ? bos : random.Next(3, vocab)).ToArray();
    }

    public static int RunChild(PeerArgs a)
    {
        string engineName = a.Require("engine"), model = a.Require("model");
        int nPrompt = a.Int("prompt", 512), nGen = a.Int("gen", 128), threads = a.Int("threads", Environment.ProcessorCount), reps = a.Int("reps", 3);
        int[] tokens = PromptIds(nPrompt, int.Parse(a.Require("bos"), CultureInfo.InvariantCulture), a.Int("vocab", 256000));
        double loadAverageStart = PeerStats.LoadAverage();
        double baseline = PeerStats.StatusMiB("VmRSS");
        var load = Stopwatch.StartNew();
        using IPeerEngine engine = PeerEngines.Open(engineName, model, threads, nPrompt + nGen);
        double loadMs = load.Elapsed.TotalMilliseconds;
        var pp = new List<double>(); var tg = new List<double>(); var ttft = new List<double>();
        int[] greedy = new int[nGen];
        for (int rep = -1; rep < reps; rep++) // rep −1 warms up (JIT, page faults of the mapping)
        {
            engine.Reset();
            var clock = Stopwatch.StartNew();
            int next = Activations.ArgMax(engine.Prefill(tokens, default));
            double prefill = clock.Elapsed.TotalSeconds;
            clock.Restart();
            for (int i = 0; i < nGen; i++)
            {
                greedy[i] = next;
                next = Activations.ArgMax(engine.Decode(next));
            }
            double decode = clock.Elapsed.TotalSeconds;
            if (rep < 0) continue;
            pp.Add(nPrompt / prefill); tg.Add(nGen / decode); ttft.Add(prefill * 1000);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{PeerEngines.DisplayName(engineName)}] rep {rep + 1}/{reps}: pp {nPrompt / prefill:F2} tok/s, tg {nGen / decode:F2} tok/s"));
        }
        var run = new EngineRun(engineName, model, threads, nPrompt, nGen, reps, tokens.Aggregate(17L, (h, t) => h * 31 + t),
            pp.ToArray(), tg.ToArray(), ttft.ToArray(), PeerStats.Mean(pp), PeerStats.Sd(pp), PeerStats.Mean(tg), PeerStats.Sd(tg),
            PeerStats.Mean(ttft), baseline, PeerStats.StatusMiB("VmHWM"), loadMs, greedy, loadAverageStart, PeerStats.LoadAverage(),
            engineName == PeerEngines.LlamaCpp ? LlamaCppEngine.NativeDescription()
                : $".NET {Environment.Version}, Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, AvxVnni {System.Runtime.Intrinsics.X86.AvxVnni.IsSupported}");
        Console.WriteLine(JsonSerializer.Serialize(run, Json));
        return 0;
    }
}
