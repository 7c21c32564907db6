using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Synthetic;
using NUnit.Framework;

namespace Gemma.Tests.Model;

[Category("Model")]
public class SyntheticCheckpointTests
{
    [Test]
    public void SyntheticFolderLoadsWithTheSameConfigAndIsDeterministic()
    {
        GemmaConfig small = GemmaPresets.Gemma2_2B with
        {
            VocabSize = 300, HiddenSize = 64, IntermediateSize = 96, NumLayers = 3, NumHeads = 4, NumKvHeads = 2, HeadDim = 16,
            QueryPreAttnScalar = 16, SlidingWindow = 4,
            LayerTypes = [AttentionKind.Sliding, AttentionKind.Full, AttentionKind.Sliding],
        };
        using var a = new Fixtures.TempDir();
        using var b = new Fixtures.TempDir();
        SyntheticCheckpoint.Write(small, a.Path, seed: 7);
        SyntheticCheckpoint.Write(small, b.Path, seed: 7);
        using var model = GemmaModel.Load(a.Path);
        Assert.That(model.Config with { EosTokenIds = [] }, Is.EqualTo(small with { EosTokenIds = [] }).Using<GemmaConfig>(SameShape));
        using var ctx = model.CreateContext();
        float[] logits = ctx.Prefill([2, 5, 7, 11, 13, 17]).ToArray();
        Assert.That(logits.All(float.IsFinite), Is.True);
        Assert.That(logits.Distinct().Count(), Is.GreaterThan(100), "random weights give varied logits");
        foreach (string f in Directory.GetFiles(a.Path))
            Assert.That(File.ReadAllBytes(f), Is.EqualTo(File.ReadAllBytes(Path.Combine(b.Path, Path.GetFileName(f)))), Path.GetFileName(f));
    }

    private static bool SameShape(GemmaConfig x, GemmaConfig y) =>
        x.Family == y.Family && x.VocabSize == y.VocabSize && x.HiddenSize == y.HiddenSize && x.IntermediateSize == y.IntermediateSize
        && x.NumLayers == y.NumLayers && x.NumHeads == y.NumHeads && x.NumKvHeads == y.NumKvHeads && x.HeadDim == y.HeadDim
        && x.QueryPreAttnScalar == y.QueryPreAttnScalar && x.SlidingWindow == y.SlidingWindow && x.LayerTypes.SequenceEqual(y.LayerTypes)
        && x.AttnLogitSoftcapping == y.AttnLogitSoftcapping && x.FinalLogitSoftcapping == y.FinalLogitSoftcapping
        && x.RopeTheta == y.RopeTheta && x.RmsNormEps == y.RmsNormEps && x.MaxPositionEmbeddings == y.MaxPositionEmbeddings;
}
