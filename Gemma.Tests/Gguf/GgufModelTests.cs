using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using Gemma.Core.Tokenization;
using Gemma.Kernels;
using Gemma.Tests.Model;
using Gemma.Tests.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>Hugging Face folder → GGUF (our converter, llama.cpp conventions) → load: the same model.</summary>
[Category("Gguf")]
public class GgufModelTests
{
    private static string Convert(Fixtures.TempDir dir, string source, GgufOutputType type)
    {
        string path = Path.Combine(dir.Path, $"model-{type}.gguf");
        GgufModelWriter.Convert(source, path, type);
        return path;
    }

    [TestCase("gemma2-micro", nameof(GgufOutputType.BF16))]
    [TestCase("gemma2-small", nameof(GgufOutputType.BF16))]  // query_pre_attn_scalar 24 ≠ head_dim 32: folded into attn_q
    [TestCase("gemma2-small", nameof(GgufOutputType.F32))]
    [TestCase("gemma1-micro", nameof(GgufOutputType.BF16))]
    [TestCase("gemma3-micro", nameof(GgufOutputType.BF16))]
    public void LosslessGgufReproducesTheGoldenLogits(string name, string type)
    {
        // bf16 → bf16 and bf16 → f32 are exact; norms are stored as float32 1 + w, exactly what the folder load computes.
        GoldenCase g = GoldenCase.Tiny(name);
        using var dir = new Fixtures.TempDir();
        using var model = GemmaModel.Load(Convert(dir, g.ModelDir, Enum.Parse<GgufOutputType>(type)));
        using var ctx = model.CreateContext();
        var logits = new float[g.PromptIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds, logits);
        GoldenLogitsTests.AssertClose(logits, g.PrefillLogits, g.Vocab, $"{name} {type} gguf prefill");
        var steps = new float[g.GreedyIds.Length * g.Vocab];
        ctx.Reset();
        ctx.Prefill(g.PromptIds).CopyTo(steps);
        for (int i = 0; i + 1 < g.GreedyIds.Length; i++) ctx.Decode(g.GreedyIds[i]).CopyTo(steps.AsSpan((i + 1) * g.Vocab));
        GoldenLogitsTests.AssertClose(steps, g.StepLogits, g.Vocab, $"{name} {type} gguf decode");
    }

    [Test]
    public void Q8_0GgufOfTheDemoModelStaysCloseToBf16()
    {
        // Q8_0 is lossy: compare next-token distributions with the bf16 folder on the demo model's golden prompts.
        using var dir = new Fixtures.TempDir();
        using var q8 = GemmaModel.Load(Convert(dir, Fixtures.DemoModel, GgufOutputType.Q8_0));
        using var reference = GemmaModel.Load(Fixtures.DemoModel);
        Assert.That(q8.Weights.Layers[0].QProj.Type, Is.EqualTo(WeightType.Q8_0));
        (double meanKl, double top1) = DriftFromBf16(q8, reference);
        TestContext.Out.WriteLine($"Q8_0 vs bf16: mean KL {meanKl:E3} nats, top-1 agreement {top1:P1}");
        Assert.That(meanKl, Is.LessThan(2e-3));
        Assert.That(top1, Is.GreaterThan(0.95));
    }

    /// <summary>Mean KL(bf16 ‖ quantized) and top-1 agreement over the demo goldens' prompts and greedy continuations.</summary>
    internal static (double MeanKl, double Top1) DriftFromBf16(GemmaModel quantized, GemmaModel reference)
    {
        double klSum = 0; int agree = 0, positions = 0;
        for (int gi = 0; gi < 3; gi++)
        {
            GoldenCase g = GoldenCase.Demo(gi);
            int[] ids = [.. g.PromptIds, .. g.GreedyIds];
            using var a = quantized.CreateContext();
            using var b = reference.CreateContext();
            var la = new float[ids.Length * g.Vocab];
            var lb = new float[ids.Length * g.Vocab];
            a.Prefill(ids, la);
            b.Prefill(ids, lb);
            for (int p = 0; p < ids.Length; p++)
            {
                var ra = la.AsSpan(p * g.Vocab, g.Vocab);
                var rb = lb.AsSpan(p * g.Vocab, g.Vocab);
                klSum += Metrics.KlDivergence(rb, ra);
                if (Activations.ArgMax(ra) == Activations.ArgMax(rb)) agree++;
                positions++;
            }
        }
        return (klSum / positions, (double)agree / positions);
    }

    [TestCase(nameof(GgufOutputType.Q4_K_M), 0.02, 0.9)]   // measured 9.4e-3, 94.2 %
    [TestCase(nameof(GgufOutputType.Q6_K), 3e-3, 0.95)]    // measured 1.2e-3, 97.8 %
    [TestCase(nameof(GgufOutputType.Q4_0), 0.03, 0.9)]     // measured 1.6e-2, 94.2 %
    public void FourAndSixBitGgufOfTheDemoModelIsUsedInPlaceAndStaysClose(string typeName, double maxKl, double minTop1)
    {
        GgufOutputType type = Enum.Parse<GgufOutputType>(typeName);
        using var dir = new Fixtures.TempDir();
        string path = Convert(dir, Fixtures.DemoModel, type);
        // llama.cpp's mix: tied embedding Q6_K; in Q4_K_M, attn_v/ffn_down of layers 2 and 5 of 6 (use_more_bits) Q6_K.
        using (GgufFile file = GgufFile.Open(path))
        {
            Assert.That(file.GetTensor("token_embd.weight").Type, Is.EqualTo(GgmlType.Q6_K));
            GgmlType main = type switch { GgufOutputType.Q4_K_M => GgmlType.Q4_K, GgufOutputType.Q4_0 => GgmlType.Q4_0, _ => GgmlType.Q6_K };
            for (int l = 0; l < 6; l++)
            {
                GgmlType more = type == GgufOutputType.Q4_K_M && l is 2 or 5 ? GgmlType.Q6_K : main;
                Assert.That(file.GetTensor($"blk.{l}.attn_q.weight").Type, Is.EqualTo(main), $"attn_q {l}");
                Assert.That(file.GetTensor($"blk.{l}.attn_v.weight").Type, Is.EqualTo(more), $"attn_v {l}");
                Assert.That(file.GetTensor($"blk.{l}.ffn_down.weight").Type, Is.EqualTo(more), $"ffn_down {l}");
                Assert.That(file.GetTensor($"blk.{l}.attn_norm.weight").Type, Is.EqualTo(GgmlType.F32));
            }
            Assert.That(file.Metadata.GetUInt32("general.file_type"), Is.EqualTo(type switch { GgufOutputType.Q4_K_M => 15u, GgufOutputType.Q4_0 => 2u, _ => 18u }));
        }
        using var model = GemmaModel.Load(path);
        using var reference = GemmaModel.Load(Fixtures.DemoModel);
        // In place: the kernels read the file's blocks (no Q8_0 re-encoding, no copies).
        WeightType expected = type switch { GgufOutputType.Q4_K_M => WeightType.Q4_K, GgufOutputType.Q4_0 => WeightType.Q4_0, _ => WeightType.Q6_K };
        Assert.That(model.Weights.Layers[0].QProj.Type, Is.EqualTo(expected));
        Assert.That(model.Weights.Embedding.Type, Is.EqualTo(WeightType.Q6_K));
        Assert.That(model.Weights.Source.Tensors["blk.0.attn_q.weight"].Offset, Is.GreaterThan(0));
        (double meanKl, double top1) = DriftFromBf16(model, reference);
        TestContext.Out.WriteLine($"{type} vs bf16: mean KL {meanKl:E3} nats, top-1 agreement {top1:P1}");
        Assert.That(meanKl, Is.LessThan(maxKl));
        Assert.That(top1, Is.GreaterThan(minTop1));

        // Prefill (n > 1) and decode (n = 1) run the same row kernels: the last prefill row equals stepwise decoding.
        GoldenCase g = GoldenCase.Demo(0);
        using var prefill = model.CreateContext();
        using var steps = model.CreateContext();
        var all = new float[g.PromptIds.Length * g.Vocab];
        prefill.Prefill(g.PromptIds, all);
        float[] last = [];
        foreach (int id in g.PromptIds) last = (steps.Position == 0 ? steps.Prefill([id]) : steps.Decode(id)).ToArray();
        GoldenLogitsTests.AssertClose(last, all.AsSpan((g.PromptIds.Length - 1) * g.Vocab).ToArray(), g.Vocab, $"{type} prefill vs decode");
    }

    [Test]
    public void GgufVocabularyEqualsTokenizerJsonOnTheDevGoldens()
    {
        GemmaTokenizer json = TokenizerFixtures.Full;
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "vocab.gguf");
        var writer = new GgufWriter();
        writer.AddMetadata("general.architecture", GgufValue.FromString("gemma2"));
        GgufVocabulary.Write(writer, json, chatTemplate: null);
        writer.Write(path);
        using GgufFile file = GgufFile.Open(path);
        GemmaTokenizer gguf = GgufVocabulary.Read(file);
        Assert.That(gguf.VocabularySize, Is.EqualTo(256000));
        foreach (var c in TokenizerFixtures.DevCases())
        {
            Assert.That(gguf.EncodeToIds(c.Text, addBos: true), Is.EqualTo(c.IdsWithBos), c.Text);
            Assert.That(gguf.Decode(c.Ids), Is.EqualTo(c.Decoded), c.Text);
        }
        foreach (var chat in TokenizerFixtures.DevChats())
        {
            var messages = chat.Messages.Select(m => new GemmaChatMessage(GemmaChatMessage.ParseRole(m.Role), m.Content)).ToArray();
            Assert.That(ChatTemplate.EncodeToIds(gguf, messages), Is.EqualTo(chat.Ids));
        }
    }

    [Test]
    public void DemoGgufGeneratesTheSameGreedyTextAsTheFolder()
    {
        using var dir = new Fixtures.TempDir();
        using var gguf = GemmaModel.Load(Convert(dir, Fixtures.DemoModel, GgufOutputType.BF16));
        GoldenCase g = GoldenCase.Demo(0);
        using var generator = new Gemma.Core.Generation.TextGenerator(gguf);
        string text = string.Concat(generator.Generate(g.PromptIds, Gemma.Core.Generation.SamplingOptions.Greedy with { MaxTokens = g.GreedyIds.Length }));
        Assert.That(text, Is.EqualTo(gguf.RequireTokenizer().Decode(g.GreedyIds)));
        Assert.That(gguf.RequireTokenizer().EncodeToIds("Debian システムでパッケージをインストールするには", addBos: true), Is.EqualTo(g.PromptIds));
    }

    [Test]
    public void GgufMissingATensorIsAClearError()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "broken.gguf");
        using (var source = GgufFile.Open(Convert(dir, Fixtures.Golden("gemma2-micro"), GgufOutputType.F32)))
        {
            var writer = new GgufWriter();
            foreach (var (k, v) in source.Metadata) writer.AddMetadata(k, v);
            foreach (var t in source.Tensors.Where(t => t.Name != "blk.1.ffn_up.weight"))
                writer.AddTensor(t.Name, t.Type, t.Dimensions, t.GetData().ToArray());
            writer.Write(path);
        }
        var e = Assert.Throws<GemmaException>(() => GemmaModel.Load(path).Dispose())!;
        Assert.That(e.Message, Does.Contain("broken.gguf").And.Contain("blk.1.ffn_up.weight").And.Contain("missing"));
    }
}
