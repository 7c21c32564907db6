using System.Buffers.Binary;
using System.Text;
using Gemma.Core;
using Gemma.Core.Formats.Safetensors;
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
}
