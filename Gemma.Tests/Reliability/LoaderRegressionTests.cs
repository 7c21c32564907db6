using System.Buffers.Binary;
using System.Text;
using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// One small test per defect the fuzz suites found: each input made a loader throw something other than a
/// <see cref="GemmaException"/> before the fix.
/// </summary>
[Category("Reliability")]
public class LoaderRegressionTests
{
    private static string WriteSafetensors(string dir, string header, int dataBytes = 128)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = Path.Combine(dir, "model.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [TestCase("[\"0\", \"128\"]")]
    [TestCase("[null, null]")]
    [TestCase("[[], {}]")]
    public void SafetensorsOffsetsThatAreNotNumbers(string offsets)
    {
        using var dir = new Fixtures.TempDir();
        string path = WriteSafetensors(dir.Path, $"{{\"w\":{{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":{offsets}}}}}");
        var e = Assert.Throws<GemmaException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain("model.safetensors").And.Contain("data_offsets"));
    }

    [Test]
    public void SafetensorsHeaderWithInvalidUtf8()
    {
        using var dir = new Fixtures.TempDir();
        string path = WriteSafetensors(dir.Path, "{\"wX\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[0,128]}}");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[8 + 3] = 0xC3; // 'X' -> a lone UTF-8 lead byte inside the tensor name
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<GemmaException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain("model.safetensors"));
    }

    [Test]
    public void SafetensorsDtypeWithEscapedLoneSurrogate()
    {
        using var dir = new Fixtures.TempDir();
        string path = WriteSafetensors(dir.Path, "{\"w\":{\"dtype\":\"\\ud800\",\"shape\":[64],\"data_offsets\":[0,128]}}");
        var e = Assert.Throws<GemmaException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.Contain("model.safetensors"));
    }

    [TestCase("\"rope_parameters\": {\"rope_theta\": \"10000\", \"rope_type\": \"default\"}")]
    [TestCase("\"rope_parameters\": {\"rope_theta\": null}")]
    [TestCase("\"layer_types\": [\"sliding_attention\", \"\\ud800\", \"sliding_attention\", \"full_attention\"]")]
    [TestCase("\"model_type\": \"\\udc00\"")]
    public void ConfigValuesOfTheWrongKindOrUnreadable(string member)
    {
        string json = File.ReadAllText(Path.Combine(Fixtures.Golden("gemma2-micro"), "config.json"));
        string name = member[..member.IndexOf(':')];
        Assert.That(json, Does.Contain(name + ":"), "fixture sanity");
        // The original key is renamed out of the way; the damaged member goes first.
        string damaged = "{" + member + "," + json.Trim()[1..].Replace(name + ":", name.Insert(1, "unused_") + ":");
        var e = Assert.Throws<GemmaException>(() => GemmaConfigReader.Parse(damaged, "/m/config.json"))!;
        Assert.That(e.Message, Does.Contain("config.json"));
    }

    [TestCase("{\"weight_map\": {\"\\ud800\": \"model-00001-of-00003.safetensors\"}}")]
    [TestCase("{\"weight_map\": {\"a\": \"model-\\udc00.safetensors\"}}")]
    public void ShardIndexWithUnreadableText(string index)
    {
        using var dir = new Fixtures.TempDir();
        File.WriteAllText(Path.Combine(dir.Path, SafetensorsCheckpoint.IndexFileName), index);
        var e = Assert.Throws<GemmaException>(() => SafetensorsCheckpoint.Open(dir.Path).Dispose())!;
        Assert.That(e.Message, Does.Contain(SafetensorsCheckpoint.IndexFileName));
    }

    private static GemmaException TokenizerFails(Func<string, string> damage)
    {
        string json = System.Text.Encoding.UTF8.GetString(TokenizerFuzzTests.SyntheticTokenizerJson());
        string damaged = damage(json);
        Assert.That(damaged, Is.Not.EqualTo(json), "fixture sanity: the damage applies");
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        File.WriteAllText(path, damaged);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<GemmaException>(() => GemmaTokenizer.FromTokenizerJson(path))!;
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(16L << 20), "no allocation sized by a damaged id");
        Assert.That(e.Message, Does.Contain("tokenizer.json"));
        return e;
    }

    [TestCase("10000000000")]   // not an Int32: FormatException before the fix
    [TestCase("2147483647")]    // id + 1 overflowed: OverflowException
    [TestCase("2000000000")]    // a 16 GB array of pieces: OutOfMemoryException
    [TestCase("1.5")]
    public void TokenizerJsonVocabularyIdOutOfRange(string id) =>
        TokenizerFails(json => json.Replace("\"<0x41>\":71", $"\"<0x41>\":{id}"));

    [Test]
    public void TokenizerJsonMergePairWithNull() =>
        TokenizerFails(json => json.Replace("\"merges\":[\"▁ t\"", "\"merges\":[[null,\"t\"]"));

    [Test]
    public void TokenizerJsonAddedTokenWithoutContent() =>
        TokenizerFails(json => json.Replace("\"content\":\"<pad>\",", ""));

    [Test]
    public void SmallTokenizerJsonAllocatesLittle()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        byte[] bytes = TokenizerFuzzTests.SyntheticTokenizerJson();
        File.WriteAllBytes(path, bytes);
        GemmaTokenizer.FromTokenizerJson(path); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        GemmaTokenizer.FromTokenizerJson(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        TestContext.Out.WriteLine($"{bytes.Length} B tokenizer.json: {allocated:N0} B allocated");
        // Before the fix the reader reserved a 300,000-entry list (4.8 MB) whatever the file's size.
        Assert.That(allocated, Is.LessThan(64L * bytes.Length + (1 << 20)));
    }
}
