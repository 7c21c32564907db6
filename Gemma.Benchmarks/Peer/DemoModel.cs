using System.Text.Json;
using Gemma.Core.Formats.Gguf;

namespace Gemma.Benchmarks.Peer;

/// <summary>One demo golden: the ids of a prompt and its greedy continuation, with the float64-reference logits.</summary>
internal sealed record DemoGolden(int Index, int[] Ids, int PromptLength, float[] ReferenceLogits);

/// <summary>
/// The embedded demo model (Gemma.Cli/demo-model/gemma2-ja-demo) and the two GGUF files our converter writes from it,
/// the inputs of <c>logits-check</c> and <c>quality</c>.
/// </summary>
internal static class DemoModel
{
    public const int Vocab = 11427;

    public static string Folder => Path.Combine(PeerStats.RepoRoot(), "Gemma.Cli", "demo-model", "gemma2-ja-demo");

    /// <summary>
    /// Writes (once) <c>demo-bf16.gguf</c> and <c>demo-{type}.gguf</c> (default Q8_0) into <paramref name="dir"/> and
    /// returns their paths.
    /// </summary>
    public static (string Bf16, string Q8) WriteGgufFiles(string dir, GgufOutputType type = GgufOutputType.Q8_0)
    {
        Directory.CreateDirectory(dir);
        string bf16 = Path.Combine(dir, "demo-bf16.gguf"), quantized = Path.Combine(dir, $"demo-{type.ToString().ToLowerInvariant()}.gguf");
        if (!File.Exists(bf16)) GgufModelWriter.Convert(Folder, bf16, GgufOutputType.BF16);
        if (!File.Exists(quantized)) GgufModelWriter.Convert(Folder, quantized, type);
        return (bf16, quantized);
    }

    /// <summary>
    /// The three goldens as one sequence each: prompt + greedy ids except the last (whose logits the reference does not
    /// have). Reference rows: the prompt prefill <c>[prompt_len, V]</c>, then greedy steps 1..39 (step 0 repeats the
    /// last prefill row) — so every position of the sequence has a float64-reference row.
    /// </summary>
    public static IReadOnlyList<DemoGolden> Goldens()
    {
        string dir = Folder;
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "golden.json")));
        var result = new List<DemoGolden>();
        int index = 0;
        foreach (JsonElement g in doc.RootElement.GetProperty("goldens").EnumerateArray())
        {
            int[] prompt = g.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            int[] greedy = g.GetProperty("greedy_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            float[] prefill = ReadF32(Path.Combine(dir, g.GetProperty("prefill_logits").GetString()!));
            float[] steps = ReadF32(Path.Combine(dir, g.GetProperty("greedy_step_logits").GetString()!));
            int[] ids = [.. prompt, .. greedy[..^1]];
            float[] reference = [.. prefill, .. steps.AsSpan(Vocab)];
            if (reference.Length != ids.Length * Vocab) throw new InvalidDataException($"golden {index}: reference logits do not match the ids");
            result.Add(new DemoGolden(index++, ids, prompt.Length, reference));
        }
        return result;
    }

    private static float[] ReadF32(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var result = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, result, 0, result.Length * 4);
        return result;
    }
}
