using Gemma.Kernels;
using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>The writer's temp-file-then-rename contract and its argument checks.</summary>
[Category("Gguf")]
public class GgufWriterTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = GgufTestFiles.NewTempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static GgufWriter WriterWithFailingSource(Action<Stream, CancellationToken> source)
    {
        GgufWriter w = GgufTestFiles.SmallModel();
        w.AddTensor("late.weight", GgmlType.F32, [1024, 4], (s, ct) => source(s, ct));
        return w;
    }

    private string[] Leftovers() => Directory.GetFiles(_dir).Select(Path.GetFileName).ToArray()!;

    [Test]
    public void SourceThatThrowsMidWriteLeavesNoTargetAndNoTempFile()
    {
        string target = Path.Combine(_dir, "model.gguf");
        GgufWriter w = WriterWithFailingSource((s, _) =>
        {
            s.Write(new byte[4096]); // a quarter of the tensor...
            throw new InvalidDataException("source exploded");
        });
        Assert.That(() => w.Write(target), Throws.TypeOf<InvalidDataException>().With.Message.EqualTo("source exploded"));
        Assert.That(Leftovers(), Is.Empty);
    }

    [Test]
    public void FailedRewriteKeepsTheOldFileIntact()
    {
        string target = Path.Combine(_dir, "model.gguf");
        GgufTestFiles.SmallModel().Write(target);
        byte[] original = File.ReadAllBytes(target);
        GgufWriter w = WriterWithFailingSource((_, _) => throw new InvalidOperationException("boom"));
        Assert.That(() => w.Write(target), Throws.InvalidOperationException);
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(original));
        Assert.That(Leftovers(), Is.EqualTo(new[] { "model.gguf" }));
    }

    [Test]
    public void CancellationDeletesTheTempFile()
    {
        string target = Path.Combine(_dir, "model.gguf");
        using var cts = new CancellationTokenSource();
        GgufWriter w = WriterWithFailingSource((s, ct) =>
        {
            s.Write(new byte[100]);
            cts.Cancel();
            ct.ThrowIfCancellationRequested();
        });
        Assert.That(() => w.Write(target, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(Leftovers(), Is.Empty);
    }

    [TestCase(16383)]
    [TestCase(16385)]
    public void SourceWritingTheWrongByteCountIsAnError(int count)
    {
        string target = Path.Combine(_dir, "model.gguf");
        GgufWriter w = WriterWithFailingSource((s, _) => s.Write(new byte[count]));
        Assert.That(() => w.Write(target), Throws.TypeOf<GemmaException>().With.Message.Contains("tensor 'late.weight'"));
        Assert.That(Leftovers(), Is.Empty);
    }

    [Test]
    public void MissingDirectoryIsAGemmaException() =>
        Assert.That(() => GgufTestFiles.SmallModel().Write(Path.Combine(_dir, "no", "such", "model.gguf")),
            Throws.TypeOf<GemmaException>().With.Message.StartsWith("model.gguf: "));

    [Test]
    public void SuccessfulWriteLeavesOnlyTheTarget()
    {
        string target = Path.Combine(_dir, "model.gguf");
        GgufTestFiles.SmallModel().Write(target);
        GgufTestFiles.SmallModel().Write(target); // overwrite
        Assert.That(Leftovers(), Is.EqualTo(new[] { "model.gguf" }));
        using GgufFile f = GgufFile.Open(target);
        Assert.That(f.Tensors, Has.Count.EqualTo(5));
    }

    [Test]
    public void ArgumentsAreChecked()
    {
        var w = new GgufWriter();
        w.AddMetadata("a", GgufValue.FromUInt32(1));
        w.AddTensor("t", GgmlType.F32, [4], new byte[16]);
        Assert.Multiple(() =>
        {
            Assert.That(() => new GgufWriter(48), Throws.InstanceOf<ArgumentException>());
            Assert.That(() => w.AddMetadata("a", GgufValue.FromUInt32(2)), Throws.ArgumentException);
            Assert.That(() => w.AddMetadata("general.alignment", GgufValue.FromUInt32(64)), Throws.ArgumentException);
            Assert.That(() => w.AddMetadata("bad", GgufValue.FromString("\ud800")), Throws.InstanceOf<ArgumentException>());
            Assert.That(() => w.AddTensor("t", GgmlType.F32, [4], new byte[16]), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", GgmlType.F32, [4], new byte[15]), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", GgmlType.Q8_0, [16], new byte[17]), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", GgmlType.F32, [], new byte[4]), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", GgmlType.F32, [0], Array.Empty<byte>()), Throws.ArgumentException);
            Assert.That(() => w.AddTensor("u", (GgmlType)4, [32], new byte[32]), Throws.InstanceOf<ArgumentException>());
            Assert.That(() => w.AddTensor(new string('x', 64), GgmlType.F32, [1], new byte[4]), Throws.ArgumentException);
        });
    }

    [Test]
    public void LayoutMatchesTheSpecByteForByte()
    {
        // One uint32 pair and one 1-element F32 tensor, written by hand from docs/gguf.md of ggml.
        var w = new GgufWriter();
        w.AddMetadata("k", GgufValue.FromUInt32(7));
        w.AddTensor("t", GgmlType.F32, [1], new byte[] { 0, 0, 0x80, 0x3F });
        string target = Path.Combine(_dir, "tiny.gguf");
        w.Write(target);
        byte[] expected = RawGguf.Header(1, 1).KvU32("k", 7).Tensor("t", 0, 0, 1).Data(0).Bytes([0, 0, 0x80, 0x3F]).ToArray();
        Assert.That(File.ReadAllBytes(target), Is.EqualTo(expected));
    }
}
