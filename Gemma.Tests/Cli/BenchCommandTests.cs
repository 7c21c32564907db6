using System.Text.Json;
using System.Xml.Linq;
using Gemma.Cli.Bench;
using Gemma.Cli.Commands;
using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Tests.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>
/// <c>gemma bench</c>: the JSON it promises and the arithmetic that turns speeds into fractions of the machine's
/// limits. Never the timings themselves.
/// </summary>
[Category("Cli")]
public class BenchCommandTests
{
    // Two layers (one global, one with window 3), 2 query heads sharing 1 KV head of dim 4, bf16 cache.
    private static readonly ModelCost Small = new(LayerMatrixBytes: 1000, LayerMatrixParams: 500, HeadBytes: 200, HeadParams: 100,
        Heads: 2, KvHeads: 1, HeadDim: 4, Windows: [int.MaxValue, 3], KvBytesPerElement: 2);

    [Test]
    public void DecodeCostCountsEveryWeightOnceAndTheVisibleKeys()
    {
        // Position 9: the global layer sees 10 keys, the sliding one 3.
        Assert.That(Small.VisibleKeys(9), Is.EqualTo(13));
        Assert.That(Small.KvBytesRead(9), Is.EqualTo(2 * 1 * 4 * 2 * 13));                 // K and V × kv heads × dim × bytes × keys
        Assert.That(Small.DecodeBytesPerToken(9), Is.EqualTo(1000 + 200 + 208));
        Assert.That(Small.AttentionFlops(9), Is.EqualTo(4 * 2 * 4 * 13));                  // (q·k + w·v) × 2 FLOPs × heads × dim × keys
        Assert.That(Small.DecodeFlopsPerToken(9), Is.EqualTo(2 * (500 + 100) + 416));
    }

    [Test]
    public void PrefillCostAveragesAttentionAndChargesTheHeadOnce()
    {
        // Positions 0..3 see 1+1, 2+2, 3+3, 4+3 keys = 19; attention 4·2·4·19 = 608; head 2·100 once for 4 tokens.
        Assert.That(Small.PrefillFlopsPerToken(0, 4), Is.EqualTo(2 * 500 + (608 + 200) / 4.0));
        // 5 tokens in chunks of 2 read the layer matrices 3 times and the head once.
        Assert.That(Small.PrefillBytesPerToken(5, 2), Is.EqualTo((3 * 1000 + 200) / 5.0));
    }

    [Test]
    public void FractionsOfTheLimits()
    {
        Assert.That(Roofline.DecodeFraction(tokensPerSecond: 10, bytesPerToken: 2e9, readGBPerSecond: 40), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(Roofline.PrefillFraction(tokensPerSecond: 50, flopsPerToken: 4e9, fmaGFlopPerSecond: 400), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(Roofline.Attainable(flopPerByte: 2, readGBPerSecond: 20, fmaGFlopPerSecond: 300), Is.EqualTo(40));
        Assert.That(Roofline.Attainable(flopPerByte: 100, readGBPerSecond: 20, fmaGFlopPerSecond: 300), Is.EqualTo(300));
    }

    [Test]
    public void ModelCostOfALoadedModelMatchesItsConfig()
    {
        GemmaModel model = DemoModel.Instance;
        GemmaConfig c = model.Config;
        var cost = ModelCost.Of(model, kvBytesPerElement: 4);
        // q, o: hidden × q_dim; k, v: hidden × kv_dim; gate, up, down: hidden × ffn — per layer.
        double perLayer = 2.0 * c.HiddenSize * c.QueryDim + 2.0 * c.HiddenSize * c.KvDim + 3.0 * c.HiddenSize * c.IntermediateSize;
        Assert.That(cost.LayerMatrixParams, Is.EqualTo(c.NumLayers * perLayer));
        Assert.That(cost.HeadParams, Is.EqualTo((double)c.VocabSize * c.HiddenSize));
        Assert.That(cost.Windows, Has.Length.EqualTo(c.NumLayers));
    }

    [Test]
    public void LimitProbesComputeWhatTheyClaim()
    {
        // The read probe's sum must really read every element (or the JIT could skip the loads).
        float[] data = Enumerable.Range(0, 1000).Select(i => (float)(i % 7)).ToArray();
        unsafe
        {
            fixed (float* p = data) Assert.That(MachineLimits.Sum(p, data.Length), Is.EqualTo(data.Sum()));
        }
        // c ← c·0.999999 + 1e-7 from ≈ 0 stays finite and grows by ≈ 1e-7 per step in each chain.
        float chains = MachineLimits.FmaChains(1000, 0f);
        Assert.That(float.IsFinite(chains) && chains > 0, Is.True, $"{chains}");
    }

    [Test]
    public void RooflineChartIsValidSvgWithOneRoofPerCeilingAndOneMarkerPerPoint()
    {
        string svg = RooflineChart.Render("test <&>", [new("2 threads", 20, 300, false), new("1 thread", 12, 150, true)],
            [new("decode", 2, 20), new("prefill", 100, 150), new("bad", 0, 1)]);
        XDocument doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.That(doc.Descendants(ns + "polyline").Count(), Is.EqualTo(2));
        Assert.That(doc.Descendants(ns + "circle").Count(), Is.EqualTo(4), "marker + legend dot per valid point; the zero-intensity point is dropped");
        Assert.That(svg, Does.Contain("50 % of roof"), "decode: 20 of min(300, 2·20) = 40 GFLOP/s");
        Assert.That(svg, Does.Contain("test &lt;&amp;&gt;"));
    }

    [Test]
    public void BenchJsonHasTheLimitsAndFractions()
    {
        using var dir = new Fixtures.TempDir();
        string svg = Path.Combine(dir.Path, "roofline.svg");
        var r = CliProcess.Run("bench", "--model", Fixtures.DemoModel, "--prompt", "8", "--gen", "4", "--reps", "1", "--threads", "2",
            "--long-context", "130", "--bandwidth-mib", "16", "--json", "--roofline", svg);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        JsonElement root = doc.RootElement;
        foreach (string key in new[]
        {
            "prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "peak_rss_mib", "rss_budget_mib", "read_gb_per_s", "fma_gflop_per_s",
            "read_gb_per_s_1t", "fma_gflop_per_s_1t", "decode_roofline_fraction", "prefill_peak_fraction", "decode_bytes_per_token",
            "prefill_flops_per_token", "decode_short_tokens_per_s", "decode_long_tokens_per_s", "long_context_ratio",
        })
            Assert.That(root.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
        Assert.That(root.GetProperty("decode_long_position").GetInt32(), Is.EqualTo(130));
        Assert.That(root.GetProperty("threads").GetInt32(), Is.EqualTo(2));
        // The fraction is the stated arithmetic of the other keys (rounding aside).
        double expected = root.GetProperty("decode_tokens_per_s").GetDouble() * root.GetProperty("decode_bytes_per_token").GetDouble()
            / (root.GetProperty("read_gb_per_s").GetDouble() * 1e9);
        Assert.That(root.GetProperty("decode_roofline_fraction").GetDouble(), Is.EqualTo(expected).Within(0.01 * expected + 1e-4));
        Assert.That(root.GetProperty("roofline_points").GetArrayLength(), Is.EqualTo(3));
        Assert.That(XDocument.Load(svg).Root!.Name.LocalName, Is.EqualTo("svg"));

        // The points of that output can be fed back into a new picture.
        string json = Path.Combine(dir.Path, "run.json");
        File.WriteAllText(json, r.Stdout);
        Assert.That(BenchCommand.ReadPoints(json), Has.Count.EqualTo(3));
    }

    [Test]
    public void BadRooflineInputIsAUsageError()
    {
        using var dir = new Fixtures.TempDir();
        string json = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(json, "{\"roofline_points\": [{\"label\": 1}]}");
        Assert.Throws<UsageException>(() => BenchCommand.ReadPoints(json));
        File.WriteAllText(json, "not json");
        Assert.Throws<UsageException>(() => BenchCommand.ReadPoints(json));
        var r = CliProcess.Run("bench", "--model", Fixtures.DemoModel, "--long-context", "50");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Stderr, Does.Contain("--long-context"));
    }
}
