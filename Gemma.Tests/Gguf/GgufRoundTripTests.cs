using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

[Category("Gguf")]
public class GgufRoundTripTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = GgufTestFiles.NewTempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void EveryMetadataTypeRoundTrips()
    {
        var w = new GgufWriter();
        w.AddMetadata("u8", GgufValue.FromUInt8(250));
        w.AddMetadata("i8", GgufValue.FromInt8(-100));
        w.AddMetadata("u16", GgufValue.FromUInt16(65000));
        w.AddMetadata("i16", GgufValue.FromInt16(-32000));
        w.AddMetadata("u32", GgufValue.FromUInt32(4_000_000_000));
        w.AddMetadata("i32", GgufValue.FromInt32(-2_000_000_000));
        w.AddMetadata("f32", GgufValue.FromSingle(3.14159f));
        w.AddMetadata("bool", GgufValue.FromBoolean(true));
        w.AddMetadata("str", GgufValue.FromString("héllo ▁wörld 日本語"));
        w.AddMetadata("empty", GgufValue.FromString(""));
        w.AddMetadata("u64", GgufValue.FromUInt64(ulong.MaxValue));
        w.AddMetadata("i64", GgufValue.FromInt64(long.MinValue));
        w.AddMetadata("f64", GgufValue.FromDouble(2.718281828459045));
        w.AddMetadata("a.u8", GgufValue.FromArray([(byte)0, (byte)255]));
        w.AddMetadata("a.i8", GgufValue.FromArray([(sbyte)-128, (sbyte)127]));
        w.AddMetadata("a.u16", GgufValue.FromArray([(ushort)1, (ushort)65535]));
        w.AddMetadata("a.i16", GgufValue.FromArray([(short)-1, (short)32767]));
        w.AddMetadata("a.u32", GgufValue.FromArray([1u, 4_000_000_000u]));
        w.AddMetadata("a.i32", GgufValue.FromArray([-5, 7, 2_000_000_000]));
        w.AddMetadata("a.f32", GgufValue.FromArray([0.5f, -1e-6f, float.MaxValue]));
        w.AddMetadata("a.bool", GgufValue.FromArray([true, false, true]));
        w.AddMetadata("a.str", GgufValue.FromArray(["<bos>", "", "▁the", "日本"]));
        w.AddMetadata("a.u64", GgufValue.FromArray([ulong.MaxValue, 0ul]));
        w.AddMetadata("a.i64", GgufValue.FromArray([long.MinValue, 3L]));
        w.AddMetadata("a.f64", GgufValue.FromArray([1e300, -0.0]));
        w.AddMetadata("a.empty", GgufValue.FromArray(ReadOnlySpan<float>.Empty));
        w.AddMetadata("a.nested", GgufValue.FromArray([
            GgufValue.FromArray([1, 2, 3]),
            GgufValue.FromArray(["x", "y"]),
            GgufValue.FromArray([GgufValue.FromArray([true])]),
        ]));
        string path = Path.Combine(_dir, "meta.gguf");
        w.Write(path);

        using GgufFile f = GgufFile.Open(path);
        GgufMetadata m = f.Metadata;
        Assert.Multiple(() =>
        {
            Assert.That(f.Version, Is.EqualTo(3u));
            Assert.That(m.Count, Is.EqualTo(27));
            Assert.That(m.Keys.First(), Is.EqualTo("u8"), "file order is kept");
            Assert.That(m["u8"].Value, Is.EqualTo((byte)250));
            Assert.That(m["i8"].Value, Is.EqualTo((sbyte)-100));
            Assert.That(m["u16"].Value, Is.EqualTo((ushort)65000));
            Assert.That(m["i16"].Value, Is.EqualTo((short)-32000));
            Assert.That(m.GetUInt32("u32"), Is.EqualTo(4_000_000_000u));
            Assert.That(m.GetInt32("i32"), Is.EqualTo(-2_000_000_000));
            Assert.That(m.GetSingle("f32"), Is.EqualTo(3.14159f));
            Assert.That(m.GetBoolean("bool"), Is.True);
            Assert.That(m.GetString("str"), Is.EqualTo("héllo ▁wörld 日本語"));
            Assert.That(m.GetString("empty"), Is.EqualTo(""));
            Assert.That(m.GetUInt64("u64"), Is.EqualTo(ulong.MaxValue));
            Assert.That(m.GetInt64("i64"), Is.EqualTo(long.MinValue));
            Assert.That(m.GetDouble("f64"), Is.EqualTo(2.718281828459045));
            Assert.That(m["a.u8"].Value, Is.EqualTo(new byte[] { 0, 255 }));
            Assert.That(m["a.i8"].Value, Is.EqualTo(new sbyte[] { -128, 127 }));
            Assert.That(m["a.u16"].Value, Is.EqualTo(new ushort[] { 1, 65535 }));
            Assert.That(m["a.i16"].Value, Is.EqualTo(new short[] { -1, 32767 }));
            Assert.That(m["a.u32"].Value, Is.EqualTo(new uint[] { 1, 4_000_000_000 }));
            Assert.That(m.GetInt32Array("a.i32"), Is.EqualTo(new[] { -5, 7, 2_000_000_000 }));
            Assert.That(m.GetSingleArray("a.f32"), Is.EqualTo(new[] { 0.5f, -1e-6f, float.MaxValue }));
            Assert.That(m.GetBooleanArray("a.bool"), Is.EqualTo(new[] { true, false, true }));
            Assert.That(m.GetStringArray("a.str"), Is.EqualTo(new[] { "<bos>", "", "▁the", "日本" }));
            Assert.That(m["a.u64"].Value, Is.EqualTo(new[] { ulong.MaxValue, 0ul }));
            Assert.That(m.GetInt64Array("a.i64"), Is.EqualTo(new[] { long.MinValue, 3L }));
            Assert.That(m["a.f64"].Value, Is.EqualTo(new[] { 1e300, -0.0 }));
            Assert.That(m.GetArrayLength("a.empty"), Is.EqualTo(0));
            Assert.That(m["a.empty"].TypeName, Is.EqualTo("array[float32]"));
            GgufValue nested = m["a.nested"];
            Assert.That(nested.ElementType, Is.EqualTo(GgufValueType.Array));
            var inner = (GgufValue[])nested.Value;
            Assert.That(inner[0].Value, Is.EqualTo(new[] { 1, 2, 3 }));
            Assert.That(inner[1].Value, Is.EqualTo(new[] { "x", "y" }));
            Assert.That(((GgufValue[])inner[2].Value)[0].Value, Is.EqualTo(new[] { true }));
            Assert.That(f.Tensors, Is.Empty);
        });
    }

    [Test]
    public void IntegerAccessorsConvertCompatibleTypesAndRejectOthers()
    {
        var w = new GgufWriter();
        w.AddMetadata("count32", GgufValue.FromUInt32(26));
        w.AddMetadata("count64", GgufValue.FromUInt64(26));
        w.AddMetadata("negative", GgufValue.FromInt32(-1));
        w.AddMetadata("big", GgufValue.FromUInt64(1ul << 40));
        w.AddMetadata("name", GgufValue.FromString("x"));
        w.AddMetadata("ids", GgufValue.FromArray([1u, 2u]));
        w.AddMetadata("bigids", GgufValue.FromArray([1ul << 40]));
        string path = Path.Combine(_dir, "ints.gguf");
        w.Write(path);

        using GgufFile f = GgufFile.Open(path);
        GgufMetadata m = f.Metadata;
        Assert.Multiple(() =>
        {
            Assert.That(m.GetInt32("count32"), Is.EqualTo(26));
            Assert.That(m.GetInt32("count64"), Is.EqualTo(26));
            Assert.That(m.GetUInt32("count64"), Is.EqualTo(26u));
            Assert.That(m.GetSingle("count64"), Is.EqualTo(26f));
            Assert.That(m.GetInt64("big"), Is.EqualTo(1L << 40));
            Assert.That(m.GetInt32Array("ids"), Is.EqualTo(new[] { 1, 2 }));
            Assert.That(m.TryGetUInt32("absent", out _), Is.False);
            Assert.That(() => m.GetUInt32("absent"), Throws.TypeOf<GemmaException>().With.Message.Contains("ints.gguf").And.Message.Contains("'absent' is missing"));
            Assert.That(() => m.GetUInt32("negative"), Throws.TypeOf<GemmaException>().With.Message.Contains("does not fit in uint32"));
            Assert.That(() => m.TryGetInt32("big", out _), Throws.TypeOf<GemmaException>(), "present but out of range is an error, not 'absent'");
            Assert.That(() => m.GetUInt32("name"), Throws.TypeOf<GemmaException>().With.Message.Contains("has type string, expected integer"));
            Assert.That(() => m.GetString("count32"), Throws.TypeOf<GemmaException>().With.Message.Contains("has type uint32, expected string"));
            Assert.That(() => m.GetInt32Array("bigids"), Throws.TypeOf<GemmaException>().With.Message.Contains("element 0"));
            Assert.That(() => m.GetStringArray("ids"), Throws.TypeOf<GemmaException>());
        });
    }

    [Test]
    public void TensorsRoundTripZeroCopyWithAlignment([Values(32u, 64u, 4096u)] uint alignment)
    {
        float[] f32 = GgufTestFiles.Floats(5 * 3, 10);
        float[] f16 = GgufTestFiles.Floats(6, 11);
        float[] bf16 = GgufTestFiles.Floats(7, 12);
        float[] q = GgufTestFiles.Floats(64 * 3, 13);
        byte[] q8 = new byte[q.Length / 32 * 34];
        Quantizer.QuantizeQ8_0(q, q8);

        var w = new GgufWriter(alignment);
        w.AddMetadata("general.architecture", GgufValue.FromString("gemma2"));
        w.AddTensor("a.f32", GgmlType.F32, [5, 3], GgufTestFiles.F32Bytes(f32));
        w.AddTensor("b.f16", GgmlType.F16, [6], GgufTestFiles.F16Bytes(f16));
        w.AddTensor("c.bf16", GgmlType.BF16, [7, 1, 1], GgufTestFiles.BF16Bytes(bf16));
        // A callback source: written row by row, as a converter would.
        w.AddTensor("d.q8_0", GgmlType.Q8_0, [64, 3], (stream, _) =>
        {
            for (int row = 0; row < 3; row++) stream.Write(q8, row * 68, 68);
        });
        string path = Path.Combine(_dir, "tensors.gguf");
        w.Write(path);

        using GgufFile f = GgufFile.Open(path);
        Assert.That(f.Alignment, Is.EqualTo(alignment));
        Assert.That(f.DataOffset % alignment, Is.Zero);
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "a.f32", "b.f16", "c.bf16", "d.q8_0" }));
        foreach (GgufTensorInfo t in f.Tensors)
        {
            Assert.That(t.FileOffset % alignment, Is.Zero, t.Name);
            Assert.That(t.FileOffset, Is.EqualTo(f.DataOffset + t.DataOffset));
        }

        GgufTensorInfo a = f.GetTensor("a.f32");
        Assert.Multiple(() =>
        {
            Assert.That(a.Type, Is.EqualTo(GgmlType.F32));
            Assert.That(a.Dimensions.ToArray(), Is.EqualTo(new long[] { 5, 3 }));
            Assert.That(a.GetPyTorchShape(), Is.EqualTo(new long[] { 3, 5 }));
            Assert.That(a.ElementCount, Is.EqualTo(15));
            Assert.That(a.ByteSize, Is.EqualTo(60));
            Assert.That(a.RowLength, Is.EqualTo(5));
            Assert.That(a.RowCount, Is.EqualTo(3));
            Assert.That(a.GetData().ToArray(), Is.EqualTo(GgufTestFiles.F32Bytes(f32)));
            Assert.That(f.GetTensor("b.f16").GetData().ToArray(), Is.EqualTo(GgufTestFiles.F16Bytes(f16)));
            Assert.That(f.GetTensor("c.bf16").GetData().ToArray(), Is.EqualTo(GgufTestFiles.BF16Bytes(bf16)));
            Assert.That(f.GetTensor("c.bf16").GetPyTorchShape(), Is.EqualTo(new long[] { 1, 1, 7 }));
            GgufTensorInfo d = f.GetTensor("d.q8_0");
            Assert.That(d.ByteSize, Is.EqualTo(3 * 68));
            Assert.That(d.RowByteSize, Is.EqualTo(68));
            Assert.That(d.GetData().ToArray(), Is.EqualTo(q8));
            Assert.That(d.GetData(68, 68).ToArray(), Is.EqualTo(q8.AsSpan(68, 68).ToArray()));
            Assert.That(ElementTypes.Of(d.Type).InPlace == WeightType.Q8_0);
            Assert.That(f.Architecture, Is.EqualTo("gemma2"));
            Assert.That(() => f.GetTensor("nope"), Throws.TypeOf<GemmaException>().With.Message.Contains("'nope' is missing"));
        });

        unsafe
        {
            WeightMatrix wm = f.GetTensor("d.q8_0").ToWeightMatrix();
            Assert.That((wm.Rows, wm.Cols, wm.Type, wm.RowBytes), Is.EqualTo((3, 64, WeightType.Q8_0, 68L)));
            Assert.That(wm.Data == f.GetTensor("d.q8_0").DataPointer);
            WeightMatrix fm = f.GetTensor("a.f32").ToWeightMatrix(); // ggml [5, 3] = PyTorch [3, 5]
            Assert.That((fm.Rows, fm.Cols), Is.EqualTo((3, 5)));
            Assert.That(((float*)fm.Row(2))[4], Is.EqualTo(f32[2 * 5 + 4]));
        }
        Assert.That(() => f.GetTensor("b.f16").ToWeightMatrix(), Throws.TypeOf<GemmaException>().With.Message.Contains("cannot read in place"));

        var back = new float[q.Length];
        Dequantizer.DequantizeQ8_0(f.GetTensor("d.q8_0").GetData(), back);
        // Q8_0 error bound, per block of 32 with amax = max|x|: q = round(x/d) with d = amax/127 gives |x − d·q| ≤ d/2;
        // the stored scale is fp16(d), off by at most d·2⁻¹¹ (10 mantissa bits, round to nearest), times |q| ≤ 127.
        // So |x − fp16(d)·q| ≤ d·(1/2 + 127/2048) = 0.562·amax/127 — with |x| < 2 here, at most ≈ 0.0089.
        for (int i = 0; i < q.Length; i++)
        {
            int b0 = i / 32 * 32;
            float amax = q.AsSpan(b0, 32).ToArray().Max(MathF.Abs);
            double bound = amax / 127.0 * (0.5 + 127.0 / 2048) + 1e-6;
            Assert.That(back[i], Is.EqualTo(q[i]).Within(bound), $"element {i}");
        }
    }

    [Test]
    public void DequantizeRowsDecodesEachSupportedTypeAndNamesUnsupportedOnes()
    {
        float[] x = GgufTestFiles.Floats(64 * 2, 21);
        var q4 = new byte[4 * 18];
        for (int b = 0; b < 4; b++) { q4[18 * b + 1] = 0x3C; for (int j = 0; j < 16; j++) q4[18 * b + 2 + j] = (byte)(j * 17); } // d = 1, both nibbles j
        var w = new GgufWriter();
        w.AddTensor("f32", GgmlType.F32, [64, 2], GgufTestFiles.F32Bytes(x));
        w.AddTensor("f16", GgmlType.F16, [64, 2], GgufTestFiles.F16Bytes(x));
        w.AddTensor("bf16", GgmlType.BF16, [64, 2], GgufTestFiles.BF16Bytes(x));
        w.AddTensor("q4_0", GgmlType.Q4_0, [64, 2], q4);
        w.AddTensor("iq4_xs", GgmlType.IQ4_XS, [256], new byte[136]);
        string path = Path.Combine(_dir, "deq.gguf");
        w.Write(path);

        using GgufFile f = GgufFile.Open(path);
        var row = new float[64];
        f.GetTensor("f32").DequantizeRows(1, row);
        Assert.That(row, Is.EqualTo(x[64..]));
        f.GetTensor("f16").DequantizeRows(1, row);
        Assert.That(row, Is.EqualTo(x[64..].Select(v => (float)(Half)v)));
        f.GetTensor("bf16").DequantizeRows(0, row);
        // Not computed with the helper that wrote the file: a bf16 value is a float32 whose low 16 bits are zero, and
        // round-to-nearest keeps it within half a bf16 ulp: 8 significant bits, so ≤ 2⁻⁸·|x| — in fact the nearer
        // of the two bf16 neighbours of x.
        for (int i = 0; i < 64; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(row[i]);
            Assert.That(bits & 0xFFFF, Is.Zero, $"element {i} is a bf16 value");
            Assert.That(Math.Abs((double)row[i] - x[i]), Is.LessThanOrEqualTo(Math.Abs((double)x[i]) / 256), $"element {i} within half a bf16 ulp");
            uint down = BitConverter.SingleToUInt32Bits(x[i]) & 0xFFFF0000u;
            double lo = BitConverter.UInt32BitsToSingle(down), hi = BitConverter.UInt32BitsToSingle(down + 0x10000);
            double nearest = Math.Abs(x[i] - lo) <= Math.Abs(hi - x[i]) ? lo : hi;
            if (Math.Abs(x[i] - lo) != Math.Abs(hi - x[i])) Assert.That((double)row[i], Is.EqualTo(nearest), $"element {i} is the nearest bf16");
        }
        var both = new float[128];
        f.GetTensor("q4_0").DequantizeRows(0, both);
        Assert.That(both[..32], Is.EqualTo(Enumerable.Range(0, 32).Select(i => (float)(i % 16 - 8))));
        Assert.That(() => f.GetTensor("q4_0").DequantizeRows(1, both), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => f.GetTensor("iq4_xs").DequantizeRows(0, new float[256]),
            Throws.TypeOf<GemmaException>().With.Message.EqualTo(
                "deq.gguf: tensor 'iq4_xs' has type IQ4_XS, which cannot be loaded (supported: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16)"));
    }

    [Test]
    public unsafe void DataPointerIsInvalidAfterDispose()
    {
        string path = Path.Combine(_dir, "small.gguf");
        GgufTestFiles.SmallModel().Write(path);
        GgufTensorInfo t;
        using (GgufFile f = GgufFile.Open(path))
        {
            t = f.Tensors[0];
            Assert.That(t.DataPointer != null);
        }
        Assert.That(() => { _ = t.GetData(); }, Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void FileIsOpenedForSharedReadingAndNeverWritten()
    {
        string path = Path.Combine(_dir, "small.gguf");
        GgufTestFiles.SmallModel().Write(path);
        byte[] before = File.ReadAllBytes(path);
        DateTime stamp = File.GetLastWriteTimeUtc(path);
        using (GgufFile f = GgufFile.Open(path))
        using (GgufFile g = GgufFile.Open(path)) // a second reader at the same time
        {
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
            Assert.That(g.Tensors, Has.Count.EqualTo(f.Tensors.Count));
        }
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(stamp));
    }

    [Test]
    public unsafe void SparseFileWithTensorsBeyond4GiBAndOver2GiB()
    {
        // A 2.5 GiB F32 tensor at offset 0 and a small one past 4 GiB; the file is sparse (SetLength), so this
        // costs no disk space. Exercises 64-bit offsets and the > 2 GiB paths a real F32 embedding needs.
        const long bigRows = 1 << 20, bigCols = 640;               // 2^20 × 640 × 4 bytes = 2.5 GiB
        const long smallOffset = 4L << 30;                          // 4 GiB, a multiple of 32
        byte[] header = RawGguf.Header(2, 0)
            .Tensor("big", (uint)GgmlType.F32, 0, (ulong)bigCols, (ulong)bigRows)
            .Tensor("small", (uint)GgmlType.F32, (ulong)smallOffset, 4).Data(0).ToArray();
        string path = Path.Combine(_dir, "sparse.gguf");
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            fs.Write(header);
            fs.SetLength(header.Length + smallOffset + 16);
            fs.Position = header.Length + smallOffset;
            fs.Write([0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40]); // 1, 2, 3, 4
            fs.Position = header.Length + 900_000 * bigCols * 4 + 8;   // row 900,000 of "big": 2.3 GB in, past 2 GiB
            fs.Write([0, 0, 0x20, 0x41]);                              // 10
        }

        using GgufFile f = GgufFile.Open(path);
        GgufTensorInfo big = f.GetTensor("big"), small = f.GetTensor("small");
        Assert.That(big.ByteSize, Is.EqualTo(bigRows * bigCols * 4));
        Assert.That(small.FileOffset, Is.EqualTo(f.DataOffset + smallOffset));
        Assert.That(() => big.GetData(), Throws.InvalidOperationException.With.Message.Contains("too large for one span"));
        var row = new float[bigCols];
        big.DequantizeRows(900_000, row);
        Assert.That(row[2], Is.EqualTo(10f));
        Assert.That(*(float*)(big.DataPointer + 900_000 * bigCols * 4 + 8), Is.EqualTo(10f));
        Assert.That(big.GetData(900_000 * bigCols * 4 + 8, 4).ToArray(), Is.EqualTo(new byte[] { 0, 0, 0x20, 0x41 }));
        var four = new float[4];
        small.DequantizeRows(0, four);
        Assert.That(four, Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));
    }

    [Test]
    public void Version2IsAccepted()
    {
        byte[] bytes = RawGguf.Header(1, 1, version: 2).KvU32("general.alignment", 32)
            .Tensor("t", (uint)GgmlType.F32, 0, 4).Data(16).ToArray();
        string path = Path.Combine(_dir, "v2.gguf");
        File.WriteAllBytes(path, bytes);
        using GgufFile f = GgufFile.Open(path);
        Assert.That(f.Version, Is.EqualTo(2u));
        Assert.That(f.GetTensor("t").GetData().ToArray(), Is.EqualTo(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray()));
    }
}
