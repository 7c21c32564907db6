using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Formats.Safetensors;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Fuzzes the two JSON files of a model folder besides the tokenizer: the shard index
/// (<c>model.safetensors.index.json</c> of a copy of the demo model, opened by <see cref="SafetensorsCheckpoint"/>)
/// and <c>config.json</c> / <c>generation_config.json</c> (of a copy of gemma2-micro, loaded end to end by
/// <see cref="GemmaModel.Load(string, GemmaModelOptions?)"/>, then run for two tokens when the load succeeds).
/// </summary>
[Category("Reliability")]
public class JsonLoaderFuzzTests
{
    private static Fixtures.TempDir CopyOf(string source)
    {
        var dir = new Fixtures.TempDir();
        foreach (string f in Directory.GetFiles(source).Where(f => !f.EndsWith(".f32", StringComparison.Ordinal)))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        return dir;
    }

    private static void Replace(string path, byte[] bytes)
    {
        File.Delete(path);
        File.WriteAllBytes(path, bytes);
    }

    private static IEnumerable<(string Label, byte[] Bytes)> ByteCases(byte[] json, int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
            yield return i % 2 == 0
                ? ($"seed {seed} #{i} bit flips", Mutate.FlipBits(json, rng, 0, json.Length, 1 + rng.Next(3)))
                : ($"seed {seed} #{i} bytes set", Mutate.SetBytes(json, rng, 0, json.Length, 1 + rng.Next(2)));
    }

    [Test]
    public void ShardIndex()
    {
        using var dir = CopyOf(Fixtures.DemoModel);
        string index = Path.Combine(dir.Path, SafetensorsCheckpoint.IndexFileName);
        byte[] original = File.ReadAllBytes(index);
        int stored;
        using (var reference = SafetensorsCheckpoint.Open(dir.Path)) stored = reference.Tensors.Count;
        string[] shards = Directory.GetFiles(dir.Path, "model-*.safetensors");
        var run = new FuzzRun("shard index");
        IEnumerable<(string, byte[])> cases = new JsonMutator(original).Cases(8001, 900)
            .Concat(ByteCases(original, 8002, 400))
            .Concat(Enumerable.Range(0, original.Length / 16).Select(i => ($"truncated at {i * 16}", original.AsSpan(0, i * 16).ToArray())));
        foreach ((string label, byte[] bytes) in cases)
        {
            run.Case(label, bytes.Length + shards.Sum(s => new FileInfo(s).Length), dir.Path, () =>
            {
                Replace(index, bytes);
                using var checkpoint = SafetensorsCheckpoint.Open(dir.Path);
                // The shards are untouched, so a successful open must give exactly their tensors, each from a shard.
                if (checkpoint.Tensors.Count != stored) throw new FuzzInconsistency($"{checkpoint.Tensors.Count} tensors, the shards hold {stored}");
                foreach (var t in checkpoint.Tensors.Values)
                    if (!shards.Contains(t.FilePath)) throw new FuzzInconsistency($"{t.Name} comes from {t.FilePath}");
            });
        }
        run.AssertNoDefects(1500);
    }

    private static void LoadAndRun(string dir)
    {
        using var model = GemmaModel.Load(dir, new GemmaModelOptions { Threads = 1 });
        GemmaConfig c = model.Config;
        if (c.LayerTypes.Length != c.NumLayers || c.NumHeads % c.NumKvHeads != 0 || c.EosTokenIds.Any(id => id < 0 || id >= c.VocabSize)
            || c.BosTokenId >= c.VocabSize || c.MaxPositionEmbeddings < 1)
            throw new FuzzInconsistency($"config out of its own bounds: {c}");
        using var ctx = model.CreateContext(Math.Min(8, c.MaxPositionEmbeddings));
        int n = Math.Min(2, ctx.ContextLength);
        ReadOnlySpan<float> logits = ctx.Prefill(new[] { c.BosTokenId, 0 }.AsSpan(0, n));
        if (logits.Length != c.VocabSize) throw new FuzzInconsistency($"{logits.Length} logits for a vocabulary of {c.VocabSize}");
    }

    [Test]
    public void ConfigJson()
    {
        using var dir = CopyOf(Fixtures.Golden("gemma2-micro"));
        string config = Path.Combine(dir.Path, "config.json");
        byte[] original = File.ReadAllBytes(config);
        long weights = new FileInfo(Path.Combine(dir.Path, "model.safetensors")).Length;
        var run = new FuzzRun("config.json");
        IEnumerable<(string, byte[])> cases = new JsonMutator(original).Cases(8101, 1300)
            .Concat(ByteCases(original, 8102, 400))
            .Concat(Enumerable.Range(0, original.Length / 8).Select(i => ($"truncated at {i * 8}", original.AsSpan(0, i * 8).ToArray())));
        foreach ((string label, byte[] bytes) in cases)
            run.Case(label, bytes.Length + weights, dir.Path, () => { Replace(config, bytes); LoadAndRun(dir.Path); });
        Replace(config, original);

        string generation = Path.Combine(dir.Path, "generation_config.json");
        byte[] originalGeneration = File.ReadAllBytes(generation);
        foreach ((string label, byte[] bytes) in new JsonMutator(originalGeneration).Cases(8103, 300).Concat(ByteCases(originalGeneration, 8104, 100)))
            run.Case("generation_config " + label, bytes.Length + original.Length + weights, dir.Path, () => { Replace(generation, bytes); LoadAndRun(dir.Path); });
        run.AssertNoDefects(2100);
    }
}
