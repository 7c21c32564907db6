using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>Model resolution (ModelLocation) and the demo model embedded in Gemma.Core.</summary>
[Category("Model")]
public class ModelLocationTests
{
    private static Func<string, string?> Env(params (string Key, string Value)[] vars) =>
        key => vars.FirstOrDefault(v => v.Key == key).Value;

    /// <summary>An environment with an empty HF cache, so the tests never see a real model on this machine.</summary>
    private static (string, string) NoCache(Fixtures.TempDir dir) => ("HF_HUB_CACHE", Path.Combine(dir.Path, "no-cache"));

    private static string MakeSnapshot(string hub, string name, DateTime written, bool withConfig = true)
    {
        string dir = Path.Combine(hub, "models--google--gemma-2-2b-jpn-it", "snapshots", name);
        Directory.CreateDirectory(dir);
        if (withConfig) File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        Directory.SetLastWriteTimeUtc(dir, written);
        return dir;
    }

    [Test]
    public void AnExplicitPathWinsOverEverything()
    {
        using var dir = new Fixtures.TempDir();
        ModelLocation l = ModelLocation.Resolve("/some/model", Env(("GEMMA_MODEL", "/env/model"), NoCache(dir)), executable: null);
        Assert.That((l.Source, l.Path), Is.EqualTo((ModelSource.Explicit, "/some/model")));
    }

    [Test]
    public void TheEnvironmentVariableComesBeforeTheCache()
    {
        using var dir = new Fixtures.TempDir();
        MakeSnapshot(dir.Path, "abc", DateTime.UtcNow);
        ModelLocation l = ModelLocation.Resolve(null, Env(("GEMMA_MODEL", "/env/model"), ("HF_HUB_CACHE", dir.Path)), executable: null);
        Assert.That((l.Source, l.Path), Is.EqualTo((ModelSource.EnvironmentVariable, "/env/model")));
    }

    [Test]
    public void TheNewestCachedSnapshotWithAConfigIsFound()
    {
        using var dir = new Fixtures.TempDir();
        MakeSnapshot(dir.Path, "old", DateTime.UtcNow.AddDays(-2));
        string newest = MakeSnapshot(dir.Path, "new", DateTime.UtcNow.AddDays(-1));
        MakeSnapshot(dir.Path, "partial", DateTime.UtcNow, withConfig: false); // an interrupted download
        ModelLocation l = ModelLocation.Resolve(null, Env(("HF_HUB_CACHE", dir.Path)), executable: null);
        Assert.That((l.Source, l.Path), Is.EqualTo((ModelSource.HuggingFaceCache, newest)));
    }

    [Test]
    public void HfHomeIsUsedWhenHfHubCacheIsUnset()
    {
        using var dir = new Fixtures.TempDir();
        string snapshot = MakeSnapshot(Path.Combine(dir.Path, "hub"), "abc", DateTime.UtcNow);
        ModelLocation l = ModelLocation.Resolve(null, Env(("HF_HOME", dir.Path)), executable: null);
        Assert.That((l.Source, l.Path), Is.EqualTo((ModelSource.HuggingFaceCache, snapshot)));
    }

    [Test]
    public void WithNothingElseTheDemoModelIsUsed()
    {
        using var dir = new Fixtures.TempDir();
        // An executable without a bundle (this test host) changes nothing.
        ModelLocation l = ModelLocation.Resolve("  ", Env(NoCache(dir)), Environment.ProcessPath);
        Assert.That(l.Source, Is.EqualTo(ModelSource.Demo));
        Assert.That(l.Path, Is.Null);
        Assert.That(l.ToString(), Does.Contain("gemma2-ja-demo"));
    }

    [Test]
    public void TheEmbeddedDemoModelMatchesTheReferenceLogits()
    {
        // The embedded GGUF is a conversion (norm weights stored as f32 with the +1 folded in): it must still be the
        // demo model to the goldens' 1e-3.
        using var model = GemmaModel.Load(ModelLocation.Demo, new GemmaModelOptions { Threads = 2 });
        Assert.That(model.Location, Does.Contain("embedded demo model"));
        for (int i = 0; i < 3; i++)
        {
            GoldenCase g = GoldenCase.Demo(i);
            using var ctx = model.CreateContext();
            var logits = new float[g.PromptIds.Length * g.Vocab];
            ctx.Prefill(g.PromptIds, logits);
            GoldenLogitsTests.AssertClose(logits, g.PrefillLogits, g.Vocab, $"demo{i} prefill (embedded)");
            var steps = new float[g.GreedyIds.Length * g.Vocab];
            ctx.Reset();
            ctx.Prefill(g.PromptIds).CopyTo(steps);
            for (int s = 0; s + 1 < g.GreedyIds.Length; s++) ctx.Decode(g.GreedyIds[s]).CopyTo(steps.AsSpan((s + 1) * g.Vocab));
            GoldenLogitsTests.AssertClose(steps, g.StepLogits, g.Vocab, $"demo{i} decode (embedded)");
        }
        Assert.That(model.RequireTokenizer().EncodeToIds("Debian システムでパッケージをインストールするには", addBos: true),
            Is.EqualTo(GoldenCase.Demo(0).PromptIds));
    }

    [Test]
    public unsafe void TheEmbeddedDemoModelIsReadInPlaceFromTheAssemblyImage()
    {
        using Stream resource = typeof(GemmaModel).Assembly.GetManifestResourceStream("gemma2-ja-demo.gguf")!;
        Assert.That(resource, Is.InstanceOf<UnmanagedMemoryStream>());
        var image = (UnmanagedMemoryStream)resource;
        byte* start = image.PositionPointer, end = start + image.Length;
        using var model = GemmaModel.Load(ModelLocation.Demo);
        int inPlace = 0;
        foreach (var t in model.Weights.Source.Tensors.Values)
        {
            Assert.That(t.Data >= start && t.Data + t.ByteLength <= end, Is.True, $"{t.Name} was copied out of the image");
            inPlace++;
        }
        Assert.That(inPlace, Is.GreaterThan(50));
    }

    [Test]
    public void TheEmbeddedDemoIsTheConversionOfTheDemoFolder()
    {
        // Guards against a stale resource: Gemma.Core/DemoModel/gemma2-ja-demo.gguf must be exactly what
        // `gemma quantize --model Gemma.Cli/demo-model/gemma2-ja-demo --type bf16` writes today.
        using var dir = new Fixtures.TempDir();
        string converted = Path.Combine(dir.Path, "gemma2-ja-demo.gguf");
        GgufModelWriter.Convert(Fixtures.DemoModel, converted, GgufOutputType.BF16);
        using Stream resource = typeof(GemmaModel).Assembly.GetManifestResourceStream("gemma2-ja-demo.gguf")!;
        var embedded = new byte[resource.Length];
        resource.ReadExactly(embedded);
        Assert.That(embedded.AsSpan().SequenceEqual(File.ReadAllBytes(converted)), Is.True,
            "regenerate with: dotnet Gemma.Cli/bin/Release/net10.0/gemma.dll quantize -m Gemma.Cli/demo-model/gemma2-ja-demo --type bf16 -o Gemma.Core/DemoModel/gemma2-ja-demo.gguf");
    }
}
