using System.Buffers.Binary;
using System.Text;
using Gemma.Core.Formats.Gguf;
using Gemma.Kernels;

namespace Gemma.Tests.Gguf;

/// <summary>Builds GGUF files for tests: valid ones through <see cref="GgufWriter"/>, broken ones byte by byte.</summary>
internal static class GgufTestFiles
{
    public static string NewTempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "gemma-gguf-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A deterministic float tensor.</summary>
    public static float[] Floats(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        return x;
    }

    public static byte[] F32Bytes(float[] x)
    {
        var b = new byte[x.Length * 4];
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), x[i]);
        return b;
    }

    public static byte[] F16Bytes(float[] x)
    {
        var b = new byte[x.Length * 2];
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(2 * i), (Half)x[i]);
        return b;
    }

    public static byte[] BF16Bytes(float[] x)
    {
        var b = new byte[x.Length * 2];
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), BFloat16.FromSingle(x[i]));
        return b;
    }

    /// <summary>
    /// A small valid file with metadata of several types and five tensors (F32, F16, Q8_0, BF16, and a 4-D F32), used as the
    /// seed of the fuzz test.
    /// </summary>
    public static GgufWriter SmallModel()
    {
        var w = new GgufWriter();
        w.AddMetadata("general.architecture", GgufValue.FromString("gemma2"));
        w.AddMetadata("gemma2.block_count", GgufValue.FromUInt32(2));
        w.AddMetadata("gemma2.context_length", GgufValue.FromUInt64(8192));
        w.AddMetadata("gemma2.attention.layer_norm_rms_epsilon", GgufValue.FromSingle(1e-6f));
        w.AddMetadata("gemma2.use_parallel_residual", GgufValue.FromBoolean(false));
        w.AddMetadata("tokenizer.ggml.tokens", GgufValue.FromArray(["<pad>", "<eos>", "<bos>", "▁hello", "日本"]));
        w.AddMetadata("tokenizer.ggml.scores", GgufValue.FromArray([0f, 0f, 0f, -1.5f, -2.25f]));
        w.AddMetadata("tokenizer.ggml.token_type", GgufValue.FromArray([3, 3, 3, 1, 1]));
        w.AddMetadata("test.nested", GgufValue.FromArray([GgufValue.FromArray([(byte)1, (byte)2]), GgufValue.FromArray(["a"])]));
        w.AddTensor("token_embd.weight", GgmlType.F32, [8, 3], F32Bytes(Floats(24, 1)));
        w.AddTensor("blk.0.attn_norm.weight", GgmlType.F16, [8], F16Bytes(Floats(8, 2)));
        var q = new byte[2 * Q8_0.BlockBytes];
        Quantizer.QuantizeQ8_0(Floats(64, 3), q);
        w.AddTensor("blk.0.attn_q.weight", GgmlType.Q8_0, [32, 2], q);
        w.AddTensor("output_norm.weight", GgmlType.BF16, [16], BF16Bytes(Floats(16, 4)));
        w.AddTensor("test.conv4d", GgmlType.F32, [2, 2, 2, 2], F32Bytes(Floats(16, 5)));
        return w;
    }

    public static byte[] SmallModelBytes(string dir)
    {
        string path = Path.Combine(dir, "seed.gguf");
        SmallModel().Write(path);
        return File.ReadAllBytes(path);
    }
}

/// <summary>Writes raw GGUF fields, including invalid ones, for validation tests.</summary>
internal sealed class RawGguf
{
    private readonly MemoryStream _s = new();

    public long Position => _s.Position;
    public RawGguf U8(byte v) { _s.WriteByte(v); return this; }
    public RawGguf U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); _s.Write(b); return this; }
    public RawGguf U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _s.Write(b); return this; }
    public RawGguf Bytes(ReadOnlySpan<byte> b) { _s.Write(b); return this; }
    public RawGguf Str(string s) => Str(Encoding.UTF8.GetBytes(s));
    public RawGguf Str(byte[] utf8) { U64((ulong)utf8.Length); return Bytes(utf8); }

    /// <summary>Magic, version and the two counts.</summary>
    public static RawGguf Header(ulong tensors, ulong kvs, uint version = 3) =>
        new RawGguf().Bytes("GGUF"u8).U32(version).U64(tensors).U64(kvs);

    /// <summary>A kv pair with a uint32 value.</summary>
    public RawGguf KvU32(string key, uint value) => Str(key).U32((uint)GgufValueType.UInt32).U32(value);

    /// <summary>A tensor info.</summary>
    public RawGguf Tensor(string name, uint type, ulong offset, params ulong[] dims)
    {
        Str(name).U32((uint)dims.Length);
        foreach (ulong d in dims) U64(d);
        return U32(type).U64(offset);
    }

    /// <summary>Zero padding up to a multiple of <paramref name="alignment"/>, then <paramref name="dataBytes"/> bytes of data.</summary>
    public RawGguf Data(int dataBytes, int alignment = 32)
    {
        while (_s.Position % alignment != 0) _s.WriteByte(0);
        for (int i = 0; i < dataBytes; i++) _s.WriteByte((byte)i);
        return this;
    }

    public byte[] ToArray() => _s.ToArray();
}
