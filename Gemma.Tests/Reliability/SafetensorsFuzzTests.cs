using Gemma.Kernels;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Safetensors;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Fuzzes <see cref="SafetensorsFile.Open"/> with mutations of the gemma2-micro fixture's model.safetensors
/// (334 KB, a 4,832-byte header of 46 tensors): truncation at every byte of the header region and at a sample of
/// data offsets, bit flips and byte values in the 8-byte length and in the JSON, structural JSON mutations, and
/// targeted shape / offset / dtype damage. Every case must be rejected with a GemmaException naming the file or
/// load into views that are inside the data region, sized by dtype × shape and disjoint.
/// </summary>
[Category("Reliability")]
public class SafetensorsFuzzTests
{
    private const string FileName = "model.safetensors";
    private static readonly byte[] Original = File.ReadAllBytes(Path.Combine(Fixtures.Golden("gemma2-micro"), FileName));
    private static int HeaderLength => (int)BinaryPrimitives.ReadUInt64LittleEndian(Original);
    private static byte[] Header => Original.AsSpan(8, HeaderLength).ToArray();
    private static byte[] Data => Original.AsSpan(8 + HeaderLength).ToArray();

    private static void Run(FuzzRun run, string dir, string label, byte[] bytes) =>
        run.Case(label, bytes.Length, FileName, () =>
        {
            string path = Path.Combine(dir, FileName);
            File.Delete(path); // a new inode each time: a mapping that leaked from an earlier case never sees new bytes
            File.WriteAllBytes(path, bytes);
            using var file = SafetensorsFile.Open(path);
            CheckConsistent(file, bytes);
        });

    /// <summary>What a successful open promises, checked independently from the raw bytes.</summary>
    private static unsafe void CheckConsistent(SafetensorsFile file, byte[] bytes)
    {
        long dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        long previousEnd = -1;
        foreach (TensorView t in file.Tensors.Values.OrderBy(t => t.Offset).ThenBy(t => t.ByteLength))
        {
            long size = t.Type switch { GgmlType.F32 => 4, GgmlType.F16 or GgmlType.BF16 => 2, _ => throw new FuzzInconsistency($"{t.Name}: type {t.Type}") };
            System.Numerics.BigInteger elements = t.Shape.Aggregate(System.Numerics.BigInteger.One, (a, d) => a * d);
            if (t.Shape.Any(d => d < 0) || elements * size != t.ByteLength) throw new FuzzInconsistency($"{t.Name}: {t.ShapeText} {t.Type} in {t.ByteLength} bytes");
            if (t.Offset < dataStart || t.Offset + t.ByteLength > bytes.Length) throw new FuzzInconsistency($"{t.Name}: [{t.Offset}, +{t.ByteLength}) outside the data region");
            if (t.ByteLength > 0 && t.Offset < previousEnd) throw new FuzzInconsistency($"{t.Name}: overlaps the previous tensor");
            if (t.ByteLength > 0) previousEnd = t.Offset + t.ByteLength;
            // Touch every byte through the library's pointer and compare with the file: no read outside the mapping.
            var span = new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteLength));
            if (!span.SequenceEqual(bytes.AsSpan((int)t.Offset, (int)t.ByteLength))) throw new FuzzInconsistency($"{t.Name}: data differs from the file");
        }
    }

    private static byte[] WithHeader(byte[] header, byte[]? data = null)
    {
        data ??= Data;
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    [Test]
    public void TruncationAtEveryHeaderByteAndAcrossTheData()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors truncation");
        int headerEnd = 8 + HeaderLength;
        for (int n = 0; n <= headerEnd + 8; n++) Run(run, dir.Path, $"first {n} bytes", Original.AsSpan(0, n).ToArray());
        for (int i = 1; i <= 200; i++)
        {
            int n = headerEnd + (int)((long)(Original.Length - headerEnd) * i / 201);
            Run(run, dir.Path, $"first {n} bytes", Original.AsSpan(0, n).ToArray());
        }
        Run(run, dir.Path, "last byte missing", Original.AsSpan(0, Original.Length - 1).ToArray());
        Run(run, dir.Path, "untouched", Original);
        Run(run, dir.Path, "one byte appended", [.. Original, 0]);
        Assert.That(run.Loaded, Is.EqualTo(2), "only the whole file (and trailing bytes after the data) may load");
        run.AssertNoDefects(5000);
    }

    [Test]
    public void HeaderLengthDamage()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors header length");
        for (int bit = 0; bit < 64; bit++)
        {
            byte[] b = (byte[])Original.Clone();
            b[bit / 8] ^= (byte)(1 << (bit % 8));
            Run(run, dir.Path, $"length bit {bit} flipped", b);
        }
        foreach (byte value in new byte[] { 0x00, 0x7F, 0x80, 0xFF })
            for (int i = 0; i < 8; i++)
            {
                byte[] b = (byte[])Original.Clone();
                b[i] = value;
                Run(run, dir.Path, $"length byte {i} := {value:X2}", b);
            }
        foreach (long length in new[] { 0L, 1, 2, 7, long.MaxValue, long.MinValue, -1, int.MaxValue, uint.MaxValue, SafetensorsFile.MaxHeaderBytes, SafetensorsFile.MaxHeaderBytes + 1, Original.Length - 8, Original.Length - 7 }
                     .Concat(Enumerable.Range(-100, 201).Select(d => (long)HeaderLength + d)))
        {
            byte[] b = (byte[])Original.Clone();
            BinaryPrimitives.WriteInt64LittleEndian(b, length);
            Run(run, dir.Path, $"length := {length}", b);
        }
        run.AssertNoDefects(300);
    }

    [Test]
    public void ByteFlipsAndByteValuesInTheJson()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors JSON bytes");
        var rng = new Random(7001);
        for (int i = 0; i < 1000; i++)
        {
            int flips = 1 + rng.Next(3);
            Run(run, dir.Path, $"seed 7001 #{i}: {flips} bit flips", Mutate.FlipBits(Original, rng, 8, HeaderLength, flips));
        }
        for (int i = 0; i < 500; i++)
            Run(run, dir.Path, $"seed 7001 set #{i}", Mutate.SetBytes(Original, rng, 8, HeaderLength, 1 + rng.Next(2)));
        run.AssertNoDefects(1500);
    }

    [Test]
    public void StructuralJsonMutations()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors JSON structure");
        var mutator = new JsonMutator(Header);
        foreach ((string label, byte[] header) in mutator.Cases(seed: 7002, count: 800))
            Run(run, dir.Path, label, WithHeader(header));
        run.AssertNoDefects(800);
    }

    private static readonly JsonNode Remove = JsonValue.Create("(remove)");

    private static readonly long[] HugeNumbers = [0, 1, 2, int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, 1L << 40, long.MaxValue / 2, long.MaxValue, -1, long.MinValue];

    private static readonly Func<JsonObject, Random, string>[] TensorDamage =
    [
        (t, r) => Set(t, "shape", new JsonArray(Pick(r, HugeNumbers), Pick(r, HugeNumbers))),
        (t, r) => Set(t, "shape", new JsonArray(-1, 64)),
        (t, r) => Set(t, "shape", new JsonArray(int.MaxValue, int.MaxValue, int.MaxValue, 0)),
        (t, r) => Set(t, "shape", new JsonArray(0, int.MaxValue, int.MaxValue, int.MaxValue)),
        (t, r) => Set(t, "shape", new JsonArray(65536, 65536, 65536, 65536)),
        (t, r) => Set(t, "shape", new JsonArray(1, 1, 1, 1, 1, 1, 1, 1, 1)),
        (t, r) => Set(t, "shape", new JsonArray()),
        (t, r) => Set(t, "shape", JsonValue.Create(1.5)),
        (t, r) => Set(t, "shape", new JsonArray(JsonValue.Create(64.5))),
        (t, r) => Set(t, "shape", new JsonArray(JsonValue.Create("64"))),
        (t, r) => Set(t, "shape", null),
        (t, r) => Set(t, "data_offsets", new JsonArray(-2, 0)),
        (t, r) => Set(t, "data_offsets", new JsonArray(Pick(r, HugeNumbers), Pick(r, HugeNumbers))),
        (t, r) => Set(t, "data_offsets", new JsonArray(0, 0)),
        (t, r) => Set(t, "data_offsets", new JsonArray(0, 1, 2)),
        (t, r) => Set(t, "data_offsets", new JsonArray(JsonValue.Create("0"), JsonValue.Create("2"))),
        (t, r) => Set(t, "data_offsets", new JsonArray(JsonValue.Create(0.5), 2)),
        (t, r) => Set(t, "data_offsets", new JsonArray(null, null)),
        (t, r) => Set(t, "data_offsets", new JsonArray(new JsonArray(), new JsonObject())),
        (t, r) => Shift(t, r.Next(-40000, 40000)),
        (t, r) => Shift(t, Data.Length),
        (t, r) => Set(t, "dtype", JsonValue.Create(Pick(r, ["F64", "I8", "bf16", "", "BF16\u0000", "Q8_0", "F8_E4M3"]))),
        (t, r) => Set(t, "dtype", JsonValue.Create(Pick(r, ["F32", "F16", "BF16"]))),
        (t, r) => Set(t, "dtype", JsonValue.Create(16)),
        (t, r) => Set(t, Pick(r, ["dtype", "shape", "data_offsets"]), Remove),
    ];

    private static T Pick<T>(Random r, T[] items) => items[r.Next(items.Length)];

    private static string Set(JsonObject t, string key, JsonNode? value)
    {
        if (ReferenceEquals(value, Remove)) { t.Remove(key); return $"{key} removed"; }
        t[key] = value;
        return $"{key} := {value?.ToJsonString() ?? "null"}";
    }

    private static string Shift(JsonObject t, long by)
    {
        var o = t["data_offsets"]!.AsArray();
        long b = o[0]!.GetValue<long>() + by, e = o[1]!.GetValue<long>() + by;
        t["data_offsets"] = new JsonArray(b, e);
        return $"data_offsets shifted by {by} (overlap or out of file)";
    }

    [Test]
    public void ShapeOffsetAndDtypeDamage()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors shape/offset/dtype");
        var rng = new Random(7003);
        string[] names = JsonNode.Parse(Header)!.AsObject().Select(p => p.Key).Where(k => k != "__metadata__").ToArray();
        for (int i = 0; i < 700; i++)
        {
            var header = JsonNode.Parse(Header)!.AsObject();
            var labels = new List<string>();
            for (int k = 0, n = 1 + (rng.Next(4) == 0 ? 1 : 0); k < n; k++)
            {
                string name = Pick(rng, names);
                labels.Add(name + ": " + Pick(rng, TensorDamage)(header[name]!.AsObject(), rng));
            }
            Run(run, dir.Path, $"seed 7003 #{i} " + string.Join("; ", labels), WithHeader(Encoding.UTF8.GetBytes(header.ToJsonString())));
        }
        run.AssertNoDefects(700);
    }

    [Test]
    public void DeepAndHugeHeaders()
    {
        using var dir = new Fixtures.TempDir();
        var run = new FuzzRun("safetensors deep/huge JSON");
        string json = Encoding.UTF8.GetString(Header);
        foreach (int depth in new[] { 1, 10, 15, 16, 17, 64, 1000, 100_000 })
        {
            string nested = new string('[', depth) + new string(']', depth);
            Run(run, dir.Path, $"metadata nested {depth}", WithHeader(Encoding.UTF8.GetBytes(json.Replace("{\"format\":\"pt\"}", nested))));
            Run(run, dir.Path, $"header is nesting {depth}", WithHeader(Encoding.UTF8.GetBytes(nested)));
            Run(run, dir.Path, $"unbalanced nesting {depth}", WithHeader(Encoding.UTF8.GetBytes(new string('{', depth))));
        }
        // 100,000 empty tensors: legal, must load (each costs a dictionary entry, nothing more).
        var many = new StringBuilder("{");
        for (int i = 0; i < 100_000; i++) many.Append($"\"t{i}\":{{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[0,0]}},");
        Run(run, dir.Path, "100,000 empty tensors", WithHeader(Encoding.UTF8.GetBytes(many.ToString().TrimEnd(',') + "}"), []));
        // The same tensor name twice (JSON allows it; the format does not).
        string first = json[1..json.IndexOf("},", StringComparison.Ordinal)];
        Run(run, dir.Path, "duplicate tensor name", WithHeader(Encoding.UTF8.GetBytes("{" + first + "}," + json[1..])));
        // A header of 8 MB of spaces after the JSON, and one as large as the limit allows with nothing else.
        Run(run, dir.Path, "8 MB of padding", WithHeader([.. Header, .. Enumerable.Repeat((byte)' ', 8 << 20)]));
        Run(run, dir.Path, "8 MB string in metadata", WithHeader(Encoding.UTF8.GetBytes(json.Replace("\"pt\"", "\"" + new string('p', 8 << 20) + "\""))));
        run.AssertNoDefects(27);
    }
}
