using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gemma.Core;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// Model files are untrusted: every defect must end in a <see cref="GemmaException"/> that names the file (and
/// tensor), never a crash or a read outside the mapping. Each test damages a copy of a valid fixture.
/// </summary>
[Category("Model")]
public class BadModelFolderTests
{
    private static Fixtures.TempDir CopyOf(string source)
    {
        var dir = new Fixtures.TempDir();
        foreach (string f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        return dir;
    }

    private static GemmaException LoadFails(string dir)
    {
        var e = Assert.Throws<GemmaException>(() => GemmaModel.Load(dir).Dispose())!;
        TestContext.Out.WriteLine(e.Message);
        return e;
    }

    /// <summary>Rewrites the JSON header of a safetensors file (keeping its data region in place).</summary>
    private static void EditHeader(string file, Action<JsonObject> edit, bool keepLength = false)
    {
        byte[] bytes = File.ReadAllBytes(file);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, n))!.AsObject();
        edit(header);
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        if (keepLength)
        {
            Assert.That(json.Length, Is.LessThanOrEqualTo(n));
            byte[] padded = Enumerable.Repeat((byte)' ', n).ToArray();
            json.CopyTo(padded, 0);
            json = padded;
        }
        var output = new byte[8 + json.Length + (bytes.Length - 8 - n)];
        BinaryPrimitives.WriteUInt64LittleEndian(output, (ulong)json.Length);
        json.CopyTo(output, 8);
        Array.Copy(bytes, 8 + n, output, 8 + json.Length, bytes.Length - 8 - n);
        File.WriteAllBytes(file, output);
    }

    private static string SingleFile(string dir) => Path.Combine(dir, "model.safetensors");

    [Test]
    public void MissingFolder() =>
        Assert.That(LoadFails("/nonexistent/gemma").Message, Does.Contain("/nonexistent/gemma"));

    [Test]
    public void MissingConfig()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        File.Delete(Path.Combine(d.Path, "config.json"));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("config.json"));
    }

    [Test]
    public void MissingWeights()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        File.Delete(SingleFile(d.Path));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.safetensors"));
    }

    [Test]
    public void MissingShard()
    {
        using var d = CopyOf(Fixtures.DemoModel);
        File.Delete(Path.Combine(d.Path, "model-00002-of-00003.safetensors"));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model-00002-of-00003.safetensors").And.Contain("missing"));
    }

    [Test]
    public void ShardIndexPointingOutsideTheFolder()
    {
        using var d = CopyOf(Fixtures.DemoModel);
        string index = Path.Combine(d.Path, "model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("model-00001-of-00003.safetensors", "../../etc/passwd"));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("not a file name inside the model folder"));
    }

    [Test]
    public void TensorListedInTheWrongShard()
    {
        using var d = CopyOf(Fixtures.DemoModel);
        string index = Path.Combine(d.Path, "model.safetensors.index.json");
        var json = JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        var map = json["weight_map"]!.AsObject();
        string name = map.First(p => p.Value!.GetValue<string>() == "model-00001-of-00003.safetensors").Key;
        map[name] = "model-00003-of-00003.safetensors";
        File.WriteAllText(index, json.ToJsonString());
        Assert.That(LoadFails(d.Path).Message, Does.Contain(name));
    }

    [Test]
    public void UnsupportedModelType()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        string config = Path.Combine(d.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"gemma2\"", "\"mistral\""));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("config.json").And.Contain("mistral"));
    }

    [Test]
    public void TensorMissing()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h => h.Remove("model.layers.2.mlp.up_proj.weight"));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.layers.2.mlp.up_proj.weight").And.Contain("missing"));
    }

    [Test]
    public void TensorExtra()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        // An empty tensor occupies no bytes, so only the tensor-set check can object to it.
        EditHeader(SingleFile(d.Path), h => h["model.layers.9.mlp.up_proj.weight"] =
            new JsonObject { ["dtype"] = "BF16", ["shape"] = new JsonArray(0, 64), ["data_offsets"] = new JsonArray(0, 0) });
        Assert.That(LoadFails(d.Path).Message, Does.Contain("unexpected tensor 'model.layers.9.mlp.up_proj.weight'"));
    }

    [Test]
    public void TensorMisshapen()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        // Same byte count, transposed shape: only the config check can catch it.
        EditHeader(SingleFile(d.Path), h => h["model.layers.1.mlp.down_proj.weight"]!["shape"] = new JsonArray(128, 64));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.layers.1.mlp.down_proj.weight").And.Contain("expected [64, 128]"));
    }

    [Test]
    public void DtypeSizeMismatch()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h => h["model.norm.weight"]!["dtype"] = "F32");
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.norm.weight").And.Contain("needs"));
    }

    [Test]
    public void UnsupportedDtype()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h => h["model.norm.weight"]!["dtype"] = "I64");
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.norm.weight").And.Contain("unsupported dtype"));
    }

    [Test]
    public void OffsetsPastTheEndOfTheFile()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h =>
        {
            var t = h["model.embed_tokens.weight"]!;
            t["data_offsets"] = new JsonArray(10_000_000_000L, 10_000_000_000L + 256 * 64 * 2);
        });
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.embed_tokens.weight").And.Contain("outside the data region"));
    }

    [Test]
    public void OverlappingTensors()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h =>
        {
            var a = h["model.layers.0.input_layernorm.weight"]!["data_offsets"]!.AsArray();
            var b = h["model.layers.1.input_layernorm.weight"]!;
            b["data_offsets"] = new JsonArray(a[0]!.GetValue<long>() + 2, a[0]!.GetValue<long>() + 2 + 128);
        });
        Assert.That(LoadFails(d.Path).Message, Does.Contain("overlap"));
    }

    [Test]
    public void NegativeDimension()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        EditHeader(SingleFile(d.Path), h => h["model.norm.weight"]!["shape"] = new JsonArray(-64));
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.norm.weight").And.Contain("invalid dimension"));
    }

    [TestCase(0)]
    [TestCase(4)]
    [TestCase(8)]
    [TestCase(100)]
    public void TruncatedFile(int keepBytes)
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        byte[] bytes = File.ReadAllBytes(SingleFile(d.Path));
        File.WriteAllBytes(SingleFile(d.Path), bytes.AsSpan(0, keepBytes).ToArray());
        Assert.That(LoadFails(d.Path).Message, Does.Contain("model.safetensors"));
    }

    [Test]
    public void TruncatedDataRegion()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        byte[] bytes = File.ReadAllBytes(SingleFile(d.Path));
        File.WriteAllBytes(SingleFile(d.Path), bytes.AsSpan(0, bytes.Length - 1000).ToArray());
        Assert.That(LoadFails(d.Path).Message, Does.Contain("outside the data region"));
    }

    [Test]
    public void HugeHeaderLength()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        byte[] bytes = File.ReadAllBytes(SingleFile(d.Path));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue - 3);
        File.WriteAllBytes(SingleFile(d.Path), bytes);
        Assert.That(LoadFails(d.Path).Message, Does.Contain("header length"));
    }

    [Test]
    public void HeaderNotJson()
    {
        using var d = CopyOf(Fixtures.Golden("gemma2-micro"));
        byte[] bytes = File.ReadAllBytes(SingleFile(d.Path));
        bytes[8] = (byte)'#';
        File.WriteAllBytes(SingleFile(d.Path), bytes);
        Assert.That(LoadFails(d.Path).Message, Does.Contain("not valid JSON"));
    }

    [Test]
    public void ModelFilesAreNotModifiedByLoading()
    {
        string file = Path.Combine(Fixtures.DemoModel, "model-00001-of-00003.safetensors");
        DateTime before = File.GetLastWriteTimeUtc(file);
        using (var model = GemmaModel.Load(Fixtures.DemoModel))
        using (var ctx = model.CreateContext())
            ctx.Prefill([2, 100, 200]);
        Assert.That(File.GetLastWriteTimeUtc(file), Is.EqualTo(before));
    }
}
