using System.Buffers.Binary;
using Gemma.Core;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Gguf;
using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>A GGUF appended to an executable (<c>gemma bundle</c>): the trailer, and the GGUF read from a region of a file.</summary>
[Category("Model")]
public class ModelBundleTests
{
    /// <summary>The embedded demo GGUF written out as a file.</summary>
    private static string DemoGguf(Fixtures.TempDir dir)
    {
        string path = Path.Combine(dir.Path, "demo.gguf");
        using Stream resource = typeof(GemmaModel).Assembly.GetManifestResourceStream("gemma2-ja-demo.gguf")!;
        using (var file = File.Create(path)) resource.CopyTo(file);
        return path;
    }

    /// <summary>A stand-in "executable": bytes of an odd length, so the GGUF needs padding to its 4 KiB boundary.</summary>
    private static string FakeHost(Fixtures.TempDir dir, int length = 12_345)
    {
        string path = Path.Combine(dir.Path, "host");
        var bytes = new byte[length];
        new Random(7).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static Func<string, string?> NoEnvironment(Fixtures.TempDir dir) =>
        key => key == "HF_HUB_CACHE" ? Path.Combine(dir.Path, "no-cache") : null;

    [Test]
    public void ABundledExecutableResolvesToItsModelAndGenerates()
    {
        using var dir = new Fixtures.TempDir();
        string host = FakeHost(dir), gguf = DemoGguf(dir), bundled = Path.Combine(dir.Path, "bundled");
        ModelBundle.Write(host, gguf, bundled);

        ModelBundle.Region region = ModelBundle.Find(bundled)!.Value;
        Assert.That(region.HostLength, Is.EqualTo(12_345));
        Assert.That(region.ModelOffset, Is.EqualTo(16_384), "the GGUF starts on the next 4 KiB boundary");
        Assert.That(region.ModelLength, Is.EqualTo(new FileInfo(gguf).Length));
        Assert.That(new FileInfo(bundled).Length, Is.EqualTo(16_384 + region.ModelLength + ModelBundle.TrailerBytes));
        Assert.That(File.ReadAllBytes(bundled).AsSpan(0, 12_345).SequenceEqual(File.ReadAllBytes(host)), Is.True, "the executable is copied unchanged");

        // The bundle outranks $GEMMA_MODEL: the executable's own model is the point of bundling it.
        ModelLocation location = ModelLocation.Resolve(null, key => key == "GEMMA_MODEL" ? "/env/model" : null, bundled);
        Assert.That((location.Source, location.Path), Is.EqualTo((ModelSource.Bundle, bundled)));
        using var model = GemmaModel.Load(location, new GemmaModelOptions { Threads = 1 });
        GoldenCase g = GoldenCase.Demo(0);
        using var generator = new TextGenerator(model);
        string text = string.Concat(generator.Generate(g.PromptIds, SamplingOptions.Greedy with { MaxTokens = 12 }));
        Assert.That(text, Is.EqualTo(model.RequireTokenizer().Decode(g.GreedyIds.AsSpan(0, 12).ToArray())));
    }

    [Test]
    public void BundlingABundledExecutableReplacesItsModel()
    {
        using var dir = new Fixtures.TempDir();
        string host = FakeHost(dir), gguf = DemoGguf(dir);
        string first = Path.Combine(dir.Path, "first"), second = Path.Combine(dir.Path, "second");
        ModelBundle.Write(host, gguf, first);
        ModelBundle.Write(first, gguf, second);
        Assert.That(File.ReadAllBytes(second), Is.EqualTo(File.ReadAllBytes(first)), "one model, not two stacked");
    }

    [Test]
    public void AnOrdinaryExecutableHasNoBundle()
    {
        using var dir = new Fixtures.TempDir();
        Assert.That(ModelBundle.Find(FakeHost(dir)), Is.Null);
        Assert.That(ModelBundle.Find(FakeHost(dir, length: 10)), Is.Null, "shorter than a trailer");
        Assert.That(ModelBundle.Find(Path.Combine(dir.Path, "missing")), Is.Null);
        Assert.That(ModelLocation.Resolve(null, NoEnvironment(dir), FakeHost(dir)).Source, Is.EqualTo(ModelSource.Demo));
    }

    [Test]
    public void ATruncatedBundleIsNoBundle()
    {
        // A copy cut short loses its trailer first: it is then an ordinary (broken) executable, not a model source.
        using var dir = new Fixtures.TempDir();
        string bundled = Path.Combine(dir.Path, "bundled");
        ModelBundle.Write(FakeHost(dir), DemoGguf(dir), bundled);
        using (var f = new FileStream(bundled, FileMode.Open)) f.SetLength(f.Length - 1000);
        Assert.That(ModelBundle.Find(bundled), Is.Null);
        Assert.That(ModelLocation.Resolve(null, NoEnvironment(dir), bundled).Source, Is.EqualTo(ModelSource.Demo));
    }

    private static byte[] Trailer(ulong host, ulong offset, ulong length, uint version = 1, uint reserved = 0)
    {
        var t = new byte[ModelBundle.TrailerBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(t, host);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(8), offset);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(16), length);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(24), version);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(28), reserved);
        "GEMMABDL"u8.CopyTo(t.AsSpan(32));
        return t;
    }

    [TestCase(100ul, 4096ul, 1000ul, 1u, 0u, "version 1", "a good trailer")]
    [TestCase(100ul, 4096ul, 1000ul, 2u, 0u, "version 2", "a future version")]
    [TestCase(100ul, 4096ul, 1000ul, 1u, 9u, "reserved", "a reserved field set")]
    [TestCase(100ul, 4096ul, 999ul, 1u, 0u, "must end where the trailer starts", "a length one short")]
    [TestCase(100ul, 4096ul, 1001ul, 1u, 0u, "must end where the trailer starts", "a length past the file")]
    [TestCase(5000ul, 4096ul, 1000ul, 1u, 0u, "must end where the trailer starts", "the host overlapping the model")]
    [TestCase(100ul, ulong.MaxValue, 1000ul, 1u, 0u, "must end where the trailer starts", "an offset near 2^64")]
    [TestCase(100ul, 4096ul, ulong.MaxValue, 1u, 0u, "must end where the trailer starts", "a length near 2^64")]
    [TestCase(100ul, 5096ul, 0ul, 1u, 0u, "must end where the trailer starts", "an empty model")]
    public void TrailersAreCheckedExactly(ulong host, ulong offset, ulong length, uint version, uint reserved, string message, string what)
    {
        const long fileLength = 4096 + 1000 + ModelBundle.TrailerBytes;
        byte[] t = Trailer(host, offset, length, version, reserved);
        if (message == "version 1")
        {
            Assert.That(ModelBundle.Parse(t, fileLength, "x"), Is.EqualTo(new ModelBundle.Region(100, 4096, 1000)), what);
            return;
        }
        var e = Assert.Throws<GemmaException>(() => ModelBundle.Parse(t, fileLength, "exe"), what)!;
        Assert.That(e.Message, Does.StartWith("exe: corrupt model bundle trailer").And.Contain(message), what);
    }

    [Test]
    public void ACorruptTrailerIsAClearErrorAtResolution()
    {
        using var dir = new Fixtures.TempDir();
        string bundled = Path.Combine(dir.Path, "bundled");
        ModelBundle.Write(FakeHost(dir), DemoGguf(dir), bundled);
        using (var f = new FileStream(bundled, FileMode.Open))
        {
            f.Position = f.Length - ModelBundle.TrailerBytes + 16; // model_length
            f.Write(BitConverter.GetBytes(12345L));
        }
        var e = Assert.Throws<GemmaException>(() => ModelLocation.Resolve(null, NoEnvironment(dir), bundled))!;
        Assert.That(e.Message, Does.Contain(bundled).And.Contain("corrupt model bundle trailer"));
    }

    [Test]
    public void AGoodTrailerOverBytesThatAreNotAGgufIsAClearLoadError()
    {
        using var dir = new Fixtures.TempDir();
        string bundled = Path.Combine(dir.Path, "bundled");
        ModelBundle.Write(FakeHost(dir), DemoGguf(dir), bundled);
        using (var f = new FileStream(bundled, FileMode.Open)) { f.Position = 16_384; f.Write("XXXX"u8); }
        ModelLocation location = ModelLocation.Resolve(null, NoEnvironment(dir), bundled);
        var e = Assert.Throws<GemmaException>(() => GemmaModel.Load(location).Dispose())!;
        Assert.That(e.Message, Does.Contain("bundled").And.Contain("not a GGUF file"));
    }

    [Test]
    public void AGgufRegionIsValidatedAgainstTheRegionNotTheFile()
    {
        // The GGUF cut 100 bytes short, with 4 KiB of other bytes after it: its last tensor's data would still lie
        // inside the file, but not inside the region, and that must be refused.
        using var dir = new Fixtures.TempDir();
        byte[] gguf = File.ReadAllBytes(DemoGguf(dir));
        string path = Path.Combine(dir.Path, "region");
        using (var f = File.Create(path))
        {
            f.Write(new byte[777]);
            f.Write(gguf);
            f.Write(new byte[4096]);
        }
        using (GgufFile whole = GgufFile.Open(path, 777, gguf.Length, "region"))
            Assert.That(whole.Tensors, Has.Count.GreaterThan(50));
        var e = Assert.Throws<GemmaException>(() => GgufFile.Open(path, 777, gguf.Length - 100, "region").Dispose())!;
        Assert.That(e.Message, Does.StartWith("region:"));
        Assert.Throws<GemmaException>(() => GgufFile.Open(path, 777, gguf.Length + 5000, "region").Dispose(), "a region past the end of the file");
        Assert.Throws<GemmaException>(() => GgufFile.Open(path, -1, 100, "region").Dispose(), "a negative offset");
    }
}
