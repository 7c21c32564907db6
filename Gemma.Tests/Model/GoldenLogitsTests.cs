using Gemma.Core;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>The definition of correct: logits equal to Hugging Face transformers' within 1e-3.</summary>
[Category("Model")]
public class GoldenLogitsTests
{
    private const float Tolerance = 1e-3f;

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (string name in new[] { "gemma2-micro", "gemma2-small", "gemma1-micro", "gemma3-micro" })
            yield return new TestCaseData(name).SetArgDisplayNames(name);
        for (int i = 0; i < 3; i++) yield return new TestCaseData($"demo{i}").SetArgDisplayNames($"demo{i}");
    }

    private static GoldenCase Load(string name) => name.StartsWith("demo", StringComparison.Ordinal)
        ? GoldenCase.Demo(name[4] - '0') : GoldenCase.Tiny(name);

    [TestCaseSource(nameof(Cases))]
    public void PrefillLogitsMatchReferenceAtEveryPosition(string name)
    {
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir, new GemmaModelOptions { Threads = 2 });
        using var ctx = model.CreateContext();
        var logits = new float[g.PromptIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds, logits);
        AssertClose(logits, g.PrefillLogits, g.Vocab, "prefill");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrefillInSmallChunksMatchesReference(string name)
    {
        // Chunks of 3 tokens: exercises chunk boundaries and ring-buffer wrap on sliding layers during prefill.
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir, new GemmaModelOptions { Threads = 1, PrefillChunk = 3 });
        using var ctx = model.CreateContext();
        var logits = new float[g.PromptIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds, logits);
        AssertClose(logits, g.PrefillLogits, g.Vocab, "chunked prefill");
    }

    [TestCaseSource(nameof(Cases))]
    public void CachedDecodeReproducesReferenceStepLogits(string name)
    {
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir, new GemmaModelOptions { Threads = 2 });
        using var ctx = model.CreateContext();
        var steps = new float[g.GreedyIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds).CopyTo(steps);
        for (int i = 0; i + 1 < g.GreedyIds.Length; i++)
            ctx.Decode(g.GreedyIds[i]).CopyTo(steps.AsSpan((i + 1) * g.Vocab));
        AssertClose(steps, g.StepLogits, g.Vocab, "decode step");
    }

    [TestCaseSource(nameof(Cases))]
    public void TokenByTokenPrefillMatchesReference(string name)
    {
        // Every prompt position through the single-token decode path (the `gemma logits --decode` route).
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir, new GemmaModelOptions { Threads = 1 });
        using var ctx = model.CreateContext();
        var logits = new float[g.PromptIds.Length * g.Vocab];
        for (int i = 0; i < g.PromptIds.Length; i++) ctx.Decode(g.PromptIds[i]).CopyTo(logits.AsSpan(i * g.Vocab));
        AssertClose(logits, g.PrefillLogits, g.Vocab, "decode prefill");
    }

    [TestCaseSource(nameof(Cases))]
    public void GreedyIdsEqualReferenceWhereTheMarginIsClear(string name)
    {
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir);
        using var ctx = model.CreateContext();
        ReadOnlySpan<float> logits = ctx.Prefill(g.PromptIds);
        int checkedSteps = 0;
        for (int i = 0; i < g.GreedyIds.Length; i++)
        {
            int ours = Activations.ArgMax(logits);
            if (g.Margins[i] > 1e-2)
            {
                Assert.That(ours, Is.EqualTo(g.GreedyIds[i]), $"step {i} (reference margin {g.Margins[i]:F4})");
                checkedSteps++;
            }
            if (i + 1 < g.GreedyIds.Length) logits = ctx.Decode(g.GreedyIds[i]); // teacher-force the reference path
        }
        Assert.That(checkedSteps, Is.GreaterThan(g.GreedyIds.Length / 2));
    }

    // Measured max |Δ| of a half-precision cache on these cases: 0.25 (decode steps, demo models) — the bound below
    // leaves 2× room; a wrong layout or a lost position moves logits by whole units.
    private const float HalfCacheTolerance = 0.5f;

    [TestCaseSource(nameof(Cases))]
    public void HalfPrecisionCacheStaysNearReference(string name)
    {
        GoldenCase g = Load(name);
        using var model = GemmaModel.Load(g.ModelDir, new GemmaModelOptions { Threads = 2, PrefillChunk = 3, KvCache = KvCacheType.Float16 });
        using var ctx = model.CreateContext();
        Assert.That(ctx.Cache.Type, Is.EqualTo(KvCacheType.Float16));
        var logits = new float[g.PromptIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds, logits);
        AssertClose(logits, g.PrefillLogits, g.Vocab, "f16 cache chunked prefill", HalfCacheTolerance);
        ctx.Reset();
        var steps = new float[g.GreedyIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds).CopyTo(steps);
        for (int i = 0; i + 1 < g.GreedyIds.Length; i++)
            ctx.Decode(g.GreedyIds[i]).CopyTo(steps.AsSpan((i + 1) * g.Vocab));
        AssertClose(steps, g.StepLogits, g.Vocab, "f16 cache decode step", HalfCacheTolerance);
    }

    internal static void AssertClose(float[] actual, float[] expected, int vocab, string what, float tolerance = Tolerance)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        double worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (!(d <= worst)) { worst = d; worstIndex = i; }
        }
        TestContext.Out.WriteLine($"{what}: max |Δ| = {worst:E3} at row {worstIndex / vocab}, col {worstIndex % vocab}");
        Assert.That(worst, Is.LessThanOrEqualTo(tolerance), $"{what}: max |Δ| {worst} at row {worstIndex / vocab}, col {worstIndex % vocab}");
    }
}
