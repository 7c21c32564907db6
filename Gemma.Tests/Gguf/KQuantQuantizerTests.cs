using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>
/// The 4/5/6-bit quantizers: bit for bit against llama.cpp, and their reconstruction error.
/// The expected hashes were recorded once from llama.cpp itself — <c>ggml_quantize_chunk</c> (no importance matrix, so
/// <c>quantize_row_q4_0_ref</c>, <c>_q4_K_ref</c>, <c>_q5_K_ref</c>, <c>_q6_K_ref</c>) of the libggml-base.so that
/// LLamaSharp.Backend.Cpu 0.30.0 ships (linux-x64/avx2), called through Python ctypes on the input generated below
/// (64 rows of 256: a xorshift64 stream at four magnitudes, one all-zero, one constant and one all-positive row).
/// The input hash pins the generator.
/// </summary>
[Category("Gguf")]
public class KQuantQuantizerTests
{
    private const int Rows = 64, Cols = 256;

    private static float[] Input()
    {
        ulong s = 0x9E3779B97F4A7C15ul;
        float[] magnitudes = [0.001f, 0.02f, 1.0f, 37.0f];
        var x = new float[Rows * Cols];
        for (int i = 0; i < x.Length; i++)
        {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            float u = (s >> 40) / (float)(1 << 24);          // [0, 1), exact
            x[i] = (u * 2 - 1) * magnitudes[i / 256 % 4];
        }
        x.AsSpan(5 * 256, 256).Clear();
        x.AsSpan(6 * 256, 256).Fill(0.25f);
        for (int i = 7 * 256; i < 8 * 256; i++) x[i] = MathF.Abs(x[i]);
        return x;
    }

    private static string Sha(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    [Test]
    public void InputIsTheRecordedOne() =>
        Assert.That(Sha(MemoryMarshal.AsBytes(Input().AsSpan())), Is.EqualTo("ccaf75b1053d8602457552c2e14dbd432b71e9e4e017cc27d8b6630e1871d202"));

    [TestCase(nameof(WeightType.Q4_0), "3c071df88b00afae0831130f29ed2cb8a7b8681352ae2bfee9605672e7106cea")]
    [TestCase(nameof(WeightType.Q4_K), "1dbac7d982129b6def27866e26b93218d23d92ebffeab2474bd9c25f8c377b79")]
    [TestCase(nameof(WeightType.Q5_K), "10783a1e394633da70c7081380b3e4e06ca22a9095f6b58f54796db60c9277e6")]
    [TestCase(nameof(WeightType.Q6_K), "8f93440f0eba22c0dd5f2ed451cba1b18fbd9d0b79a8f7878ff555da1cdb2b5d")]
    public void MatchesLlamaCppBitForBit(string typeName, string expected)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        float[] x = Input();
        var bytes = new byte[WeightMatrix.RowBytesOf(type, Cols) * Rows];
        Quantize(type, x, bytes);
        Assert.That(Sha(bytes), Is.EqualTo(expected));
    }

    internal static void Quantize(WeightType type, ReadOnlySpan<float> x, Span<byte> y)
    {
        switch (type)
        {
            case WeightType.Q4_0: Quantizer.QuantizeQ4_0(x, y); break;
            case WeightType.Q4_K: Quantizer.QuantizeQ4_K(x, y); break;
            case WeightType.Q5_K: Quantizer.QuantizeQ5_K(x, y); break;
            case WeightType.Q6_K: Quantizer.QuantizeQ6_K(x, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    [TestCase(nameof(WeightType.Q4_0), 0.12)]
    [TestCase(nameof(WeightType.Q4_K), 0.10)]
    [TestCase(nameof(WeightType.Q5_K), 0.05)]
    [TestCase(nameof(WeightType.Q6_K), 0.025)]
    public void RoundTripErrorIsSmall(string typeName, double maxRelativeRms)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        // Gaussian-like weights (sum of uniforms): relative RMS error of quantize → ggml dequantize, per row.
        var rng = new Random(7);
        const int cols = 2304;
        var x = new float[cols];
        var back = new float[cols];
        var bytes = new byte[WeightMatrix.RowBytesOf(type, cols)];
        for (int row = 0; row < 20; row++)
        {
            for (int i = 0; i < cols; i++) x[i] = (float)((rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 0.05);
            Quantize(type, x, bytes);
            unsafe
            {
                fixed (byte* p = bytes) WeightRows.ToSingle(new WeightMatrix(p, 1, cols, type), 0, back);
            }
            double err = 0, norm = 0;
            for (int i = 0; i < cols; i++) { err += (x[i] - back[i]) * (double)(x[i] - back[i]); norm += x[i] * (double)x[i]; }
            Assert.That(Math.Sqrt(err / norm), Is.LessThan(maxRelativeRms), $"{type} row {row}");
        }
    }

    [Test]
    public void BadInputIsRefused()
    {
        var bytes = new byte[1024];
        Assert.Throws<ArgumentException>(() => Quantizer.QuantizeQ4_K(new float[128], bytes));
        Assert.Throws<ArgumentException>(() => Quantizer.QuantizeQ6_K(new float[256], new byte[209]));
        var nan = new float[32];
        nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => Quantizer.QuantizeQ4_0(nan, bytes));
    }
}
