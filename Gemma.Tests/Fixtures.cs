using System.Text.Json;
using NUnit.Framework;

namespace Gemma.Tests;

/// <summary>Paths to the fixtures committed in the repository (tests never read ../shared).</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> RepoRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "gemma.sln"))) return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (gemma.sln) above the test directory.");
    });

    public static string Root => RepoRoot.Value;
    public static string Goldens => Path.Combine(Root, "Gemma.Tests", "Fixtures", "goldens");
    public static string Golden(string name) => Path.Combine(Goldens, name);
    public static string DemoModel => Path.Combine(Root, "Gemma.Cli", "demo-model", "gemma2-ja-demo");

    /// <summary>Reads a float32 little-endian file as a flat array.</summary>
    public static float[] ReadF32(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var result = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, result, 0, result.Length * 4);
        return result;
    }

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    /// <summary>A temporary directory deleted when disposed.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() { Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gemma-test-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(Path); }
        public string Path { get; }
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }
}

/// <summary>One reference case: prompt, greedy continuation and the reference logits.</summary>
internal sealed record GoldenCase(string Name, string ModelDir, int[] PromptIds, int[] GreedyIds, double[] Margins,
    float[] PrefillLogits, float[] StepLogits, int Vocab)
{
    /// <summary>The tiny random-weight models of ../shared/goldens (copied into Fixtures).</summary>
    public static GoldenCase Tiny(string name)
    {
        string dir = Fixtures.Golden(name);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "golden.json")));
        JsonElement g = doc.RootElement;
        int vocab = g.GetProperty("config").GetProperty("vocab_size").GetInt32();
        return new GoldenCase(name, dir, Fixtures.Ints(g.GetProperty("prompt_ids")), Fixtures.Ints(g.GetProperty("greedy_ids")),
            Fixtures.Doubles(g.GetProperty("greedy_top2_margins")),
            Fixtures.ReadF32(Path.Combine(dir, "prefill_logits.f32")), Fixtures.ReadF32(Path.Combine(dir, "greedy_step_logits.f32")), vocab);
    }

    /// <summary>The demo model's goldens (index 0..2).</summary>
    public static GoldenCase Demo(int index)
    {
        string dir = Fixtures.DemoModel;
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "golden.json")));
        JsonElement g = doc.RootElement.GetProperty("goldens")[index];
        return new GoldenCase($"demo{index}", dir, Fixtures.Ints(g.GetProperty("prompt_ids")), Fixtures.Ints(g.GetProperty("greedy_ids")),
            Fixtures.Doubles(g.GetProperty("greedy_top2_margins")),
            Fixtures.ReadF32(Path.Combine(dir, $"golden{index}_prefill_logits.f32")),
            Fixtures.ReadF32(Path.Combine(dir, $"golden{index}_greedy_step_logits.f32")), doc.RootElement.GetProperty("vocab").GetInt32());
    }

    public override string ToString() => Name;
}
