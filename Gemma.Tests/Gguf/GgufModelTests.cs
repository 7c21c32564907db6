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
        double klSum = 0; int agree = 0, positions = 0;
        for (int gi = 0; gi < 3; gi++)
        {
            GoldenCase g = GoldenCase.Demo(gi);
            int[] ids = [.. g.PromptIds, .. g.GreedyIds];
            using var a = q8.CreateContext();
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
        double meanKl = klSum / positions, top1 = (double)agree / positions;
        TestContext.Out.WriteLine($"Q8_0 vs bf16 on {positions} positions: mean KL {meanKl:E3} nats, top-1 agreement {top1:P1}");
        Assert.That(meanKl, Is.LessThan(2e-3));
        Assert.That(top1, Is.GreaterThan(0.95));
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
