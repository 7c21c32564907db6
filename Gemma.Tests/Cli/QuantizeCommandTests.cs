using NUnit.Framework;

namespace Gemma.Tests.Cli;

[Category("Cli")]
public class QuantizeCommandTests
{
    [Test]
    public void QuantizedDemoModelGeneratesJapaneseAndAnswersLogits()
    {
        using var dir = new Fixtures.TempDir();
        string gguf = Path.Combine(dir.Path, "demo-q8_0.gguf");
        var q = CliProcess.Run("quantize", "--model", Fixtures.DemoModel, "--type", "q8_0", "--out", gguf);
        Assert.That(q.ExitCode, Is.EqualTo(0), q.Stderr);
        Assert.That(Directory.GetFiles(dir.Path), Is.EqualTo(new[] { gguf }), "only the finished file, no temporary left");

        var g = CliProcess.Run("generate", "--model", gguf, "--prompt", "Debian システムでパッケージをインストールするには", "--seed", "1", "-n", "24");
        Assert.That(g.ExitCode, Is.EqualTo(0), g.Stderr);
        int japanese = g.Stdout.Count(ch => ch is >= '\u3040' and <= '\u30FF' or >= '\u4E00' and <= '\u9FFF');
        Assert.That(japanese, Is.GreaterThan(5), g.Stdout);
        Assert.That(g.Stderr, Does.Contain("generated"));

        string logits = Path.Combine(dir.Path, "l.f32");
        var l = CliProcess.Run("logits", "--model", gguf, "--tokens", "2,9736,8007", "--out", logits);
        Assert.That(l.ExitCode, Is.EqualTo(0), l.Stderr);
        Assert.That(new FileInfo(logits).Length, Is.EqualTo(3L * 11427 * 4));
        // The answer: the Q8_0 file's logits are the bf16 model's up to quantization noise — same top token at every
        // position and close values (Q8_0 rounds weights and activations to ~1/254 of each block's range).
        float[] q8 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(logits)).ToArray();
        using var bf16 = Gemma.Core.GemmaModel.Load(Fixtures.DemoModel);
        using var ctx = bf16.CreateContext();
        var reference = new float[q8.Length];
        ctx.Prefill([2, 9736, 8007], reference);
        for (int p = 0; p < 3; p++)
        {
            Span<float> a = q8.AsSpan(p * 11427, 11427), b = reference.AsSpan(p * 11427, 11427);
            Assert.That(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(a), Is.EqualTo(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(b)), $"top token at position {p}");
            double worst = 0;
            for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
            double range = System.Numerics.Tensors.TensorPrimitives.Max(b) - System.Numerics.Tensors.TensorPrimitives.Min(b);
            Assert.That(worst, Is.LessThan(0.05 * range), $"position {p}: worst logit difference vs the bf16 model");
        }
    }

    [Test]
    public void QuantizeRejectsUnknownTypesAndNonFolders()
    {
        var r = CliProcess.Run("quantize", "--model", Fixtures.DemoModel, "--type", "q2_k", "--out", "x.gguf");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        var f = CliProcess.Run("quantize", "--model", Path.Combine(Fixtures.DemoModel, "config.json"), "--out", "x.gguf");
        Assert.That(f.ExitCode, Is.EqualTo(1));
        Assert.That(f.Stderr, Does.Contain("not a folder"));
    }
}
