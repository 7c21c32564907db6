using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Formats.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// The family table (<see cref="GemmaFamilyRules"/>) is the one place the readers take defaults and features from:
/// every family's config survives config.json and GGUF round trips, absent keys give the published defaults (written
/// out here from the reference configuration classes, not read from the table), and both readers share one validation.
/// </summary>
[Category("Model")]
public class FamilyRulesTests
{
    // Published shapes (Hugging Face config.json of each model). query_pre_attn_scalar is head_dim except for the 27B
    // sizes (hidden / heads), which is also the rule llama.cpp applies to GGUF files.
    private static readonly object[] Shapes =
    [
        new object[] { "gemma-2b", GemmaFamily.Gemma1, 256000, 2048, 16384, 18, 8, 1, 256, 256.0 },
        new object[] { "gemma-2-2b", GemmaFamily.Gemma2, 256000, 2304, 9216, 26, 8, 4, 256, 256.0 },
        new object[] { "gemma-2-27b", GemmaFamily.Gemma2, 256000, 4608, 36864, 46, 32, 16, 128, 144.0 },
        new object[] { "gemma-3-1b", GemmaFamily.Gemma3, 262144, 1152, 6912, 26, 4, 1, 256, 256.0 },
        new object[] { "gemma-3-27b", GemmaFamily.Gemma3, 262208, 5376, 21504, 62, 32, 16, 128, 168.0 },
    ];

    private static GemmaConfig Config(GemmaFamily family, int vocab, int hidden, int ff, int layers, int heads, int kv, int headDim, double scalar) =>
        GemmaPresets.FromRules(GemmaFamilyRules.Of(family), vocab, hidden, ff, layers, heads, kv, headDim) with { QueryPreAttnScalar = scalar };

    [TestCaseSource(nameof(Shapes))]
    public void ConfigJsonRoundTripsEveryFamily(string name, GemmaFamily family, int vocab, int hidden, int ff, int layers, int heads, int kv, int headDim, double scalar)
    {
        GemmaConfig c = Config(family, vocab, hidden, ff, layers, heads, kv, headDim, scalar) with { EosTokenIds = [1, 107], RopeLocalTheta = family == GemmaFamily.Gemma3 ? 20000 : 10000 };
        GemmaConfig back = GemmaConfigReader.Parse(GemmaConfigWriter.ToJson(c), name);
        AssertSameModel(back, c, name);
        Assert.That(back.EosTokenIds, Is.EqualTo(c.EosTokenIds));
        Assert.That(back.PadTokenId, Is.EqualTo(c.PadTokenId));
    }

    [TestCaseSource(nameof(Shapes))]
    public void GgufMetadataRoundTripsEveryFamily(string name, GemmaFamily family, int vocab, int hidden, int ff, int layers, int heads, int kv, int headDim, double scalar)
    {
        GemmaConfig c = Config(family, vocab, hidden, ff, layers, heads, kv, headDim, scalar) with { RopeLocalTheta = family == GemmaFamily.Gemma3 ? 20000 : 10000 };
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "meta.gguf");
        var w = new GgufWriter();
        string arch = GemmaFamilyRules.Of(family).GgufArchitecture;
        w.AddMetadata("general.architecture", GgufValue.FromString(arch));
        GgufModelWriter.AddHyperParameters(w, arch, c);
        w.Write(path);
        using GgufFile f = GgufFile.Open(path);
        GemmaConfig back = GgufGemmaConfig.Read(f, vocab);
        AssertSameModel(back, c, name);
        // No tokenizer keys in this file: the family's ids.
        Assert.That(back.BosTokenId, Is.EqualTo(2));
        Assert.That(back.EosTokenIds, Is.EqualTo(new[] { 1 }));
    }

    private static void AssertSameModel(GemmaConfig actual, GemmaConfig expected, string name) => Assert.Multiple(() =>
    {
        Assert.That(actual.Family, Is.EqualTo(expected.Family), name);
        Assert.That((actual.VocabSize, actual.HiddenSize, actual.IntermediateSize, actual.NumLayers),
            Is.EqualTo((expected.VocabSize, expected.HiddenSize, expected.IntermediateSize, expected.NumLayers)), name);
        Assert.That((actual.NumHeads, actual.NumKvHeads, actual.HeadDim), Is.EqualTo((expected.NumHeads, expected.NumKvHeads, expected.HeadDim)), name);
        Assert.That(actual.QueryPreAttnScalar, Is.EqualTo(expected.QueryPreAttnScalar), name + " query scalar");
        Assert.That(actual.SlidingWindow, Is.EqualTo(expected.SlidingWindow), name);
        Assert.That(actual.LayerTypes, Is.EqualTo(expected.LayerTypes), name);
        Assert.That(actual.AttnLogitSoftcapping, Is.EqualTo(expected.AttnLogitSoftcapping), name);
        Assert.That(actual.FinalLogitSoftcapping, Is.EqualTo(expected.FinalLogitSoftcapping), name);
        Assert.That(actual.RmsNormEps, Is.EqualTo(expected.RmsNormEps).Within(1e-12), name); // GGUF stores float32
        Assert.That((actual.RopeTheta, actual.RopeLocalTheta), Is.EqualTo((expected.RopeTheta, expected.RopeLocalTheta)), name);
        Assert.That(actual.MaxPositionEmbeddings, Is.EqualTo(expected.MaxPositionEmbeddings), name);
        Assert.That(actual.HasPostNorms, Is.EqualTo(expected.HasPostNorms), name);
        Assert.That(actual.HasQkNorm, Is.EqualTo(expected.HasQkNorm), name);
    });

    // The defaults for absent keys, from transformers' GemmaConfig / Gemma2Config / Gemma3TextConfig.
    [TestCase("gemma", GemmaFamily.Gemma1, null, null, null, 10000.0, 10000.0, 8192, false, false, "GGGGGG")]
    [TestCase("gemma2", GemmaFamily.Gemma2, 4096, 50.0, 30.0, 10000.0, 10000.0, 8192, true, false, "SGSGSG")]
    [TestCase("gemma3_text", GemmaFamily.Gemma3, 4096, null, null, 1000000.0, 10000.0, 131072, true, true, "SSSSSG")]
    public void AbsentKeysTakeTheFamilyDefaults(string modelType, GemmaFamily family, int? window, double? attnCap, double? finalCap,
        double rope, double ropeLocal, int maxPositions, bool postNorms, bool qkNorm, string pattern)
    {
        string json = $$"""
        { "model_type": "{{modelType}}", "vocab_size": 300, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16 }
        """;
        GemmaConfig c = GemmaConfigReader.Parse(json, "config.json");
        Assert.Multiple(() =>
        {
            Assert.That(c.Family, Is.EqualTo(family));
            Assert.That(c.SlidingWindow, Is.EqualTo(window));
            Assert.That(c.AttnLogitSoftcapping, Is.EqualTo(attnCap));
            Assert.That(c.FinalLogitSoftcapping, Is.EqualTo(finalCap));
            Assert.That((c.RopeTheta, c.RopeLocalTheta), Is.EqualTo((rope, ropeLocal)));
            Assert.That(c.MaxPositionEmbeddings, Is.EqualTo(maxPositions));
            Assert.That((c.HasPostNorms, c.HasQkNorm), Is.EqualTo((postNorms, qkNorm)));
            Assert.That(string.Concat(c.LayerTypes.Select(t => t == AttentionKind.Sliding ? 'S' : 'G')), Is.EqualTo(pattern));
            Assert.That(c.QueryPreAttnScalar, Is.EqualTo(family == GemmaFamily.Gemma1 ? 16 : 256));
            Assert.That((c.BosTokenId, c.EosTokenIds.Single(), c.PadTokenId), Is.EqualTo((2, 1, (int?)0)));
        });
    }

    // One validation for both readers: the checks the GGUF path used to skip.
    [TestCase("rope.freq_base", -1.0, "rope theta must be positive")]
    [TestCase("rope.freq_base_swa", 0.0, "rope theta must be positive")]
    [TestCase("attention.layer_norm_rms_epsilon", 2.0, "rms_norm_eps")]
    [TestCase("attn_logit_softcapping", -5.0, "soft-caps must be positive")]
    public void GgufConfigsPassTheSameValidation(string key, double value, string message)
    {
        GemmaConfig c = GemmaPresets.FromRules(GemmaFamilyRules.Gemma3, 300, 64, 128, 6, 4, 2, 256);
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "bad.gguf");
        var w = new GgufWriter();
        w.AddMetadata("general.architecture", GgufValue.FromString("gemma3"));
        GgufModelWriter.AddHyperParameters(w, "gemma3", c with { RopeLocalTheta = 20000 });
        var metadata = new GgufWriter();
        metadata.AddMetadata("general.architecture", GgufValue.FromString("gemma3"));
        // Re-add every key but the one under test, then the bad value.
        using (GgufFile good = WriteAndOpen(w, path))
            foreach (var (k, v) in good.Metadata.Where(kv => kv.Key != "general.architecture" && kv.Key != $"gemma3.{key}"))
                metadata.AddMetadata(k, v);
        metadata.AddMetadata($"gemma3.{key}", GgufValue.FromSingle((float)value));
        string badPath = Path.Combine(dir.Path, "bad2.gguf");
        using GgufFile bad = WriteAndOpen(metadata, badPath);
        var e = Assert.Throws<GemmaException>(() => GgufGemmaConfig.Read(bad, 300))!;
        Assert.That(e.Message, Does.Contain(badPath).And.Contain(message));
    }

    private static GgufFile WriteAndOpen(GgufWriter w, string path)
    {
        w.Write(path);
        return GgufFile.Open(path);
    }

    [Test]
    public void PresetsAreValidAndFollowTheTable()
    {
        GemmaConfig c = GemmaPresets.Gemma2_2B;
        Assert.That(c.Validated("preset"), Is.SameAs(c));
        Assert.That((c.AttnLogitSoftcapping, c.FinalLogitSoftcapping, c.SlidingWindow), Is.EqualTo(((double?)50.0, (double?)30.0, (int?)4096)));
        Assert.That(c.EosTokenIds, Is.EqualTo(new[] { 1, 107 }));
    }
}
