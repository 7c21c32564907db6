using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>
/// Q8_0 quantize/dequantize and Q4_0/Q4_K/Q6_K dequantize against values computed by hand from ggml's block
/// layouts (ggml-common.h) and reference semantics (quantize_row_q8_0_ref, dequantize_row_*), not by calling
/// the code under test.
/// </summary>
[Category("Gguf")]
public class QuantizationTests
{
    private static float[] Dequant8(byte[] q) { var y = new float[q.Length / 34 * 32]; Dequantizer.DequantizeQ8_0(q, y); return y; }

    [Test]
    public void Q8_0AmaxOf127GivesScaleOneAndRoundsHalfAwayFromZero()
    {
        var x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = j - 16; // integers: q = x
        float[] special = [127f, 2.5f, -2.5f, 0.5f, -0.5f, 1.4999f, -126.5f, 0f, 3.7f, -3.2f];
        special.CopyTo(x, 0);
        var q = new byte[34];
        Quantizer.QuantizeQ8_0(x, q);

        // d = 127/127 = 1.0 → fp16 0x3C00; q = roundf(x): 2.5→3, -2.5→-3, 0.5→1, -0.5→-1, -126.5→-127.
        sbyte[] expectedQ = [127, 3, -3, 1, -1, 1, -127, 0, 4, -3];
        Assert.That(q[0], Is.EqualTo(0x00));
        Assert.That(q[1], Is.EqualTo(0x3C));
        for (int j = 0; j < 32; j++)
            Assert.That((sbyte)q[2 + j], Is.EqualTo(j < expectedQ.Length ? expectedQ[j] : (sbyte)(j - 16)), $"q[{j}]");
    }

    [Test]
    public void Q8_0NegativeAmaxAndTies()
    {
        var x = new float[32];
        x[0] = 3f; x[1] = -3f; x[2] = 1f; x[3] = -1f; x[4] = 253f; x[5] = -254f;
        var q = new byte[34];
        Quantizer.QuantizeQ8_0(x, q);
        // amax = 254 → d = 2.0 (fp16 0x4000), id = 0.5: 1.5→2, -1.5→-2, 0.5→1, -0.5→-1, 126.5→127, -127.
        Assert.That(q[..2], Is.EqualTo(new byte[] { 0x00, 0x40 }));
        Assert.That(q[2..8].Select(b => (sbyte)b), Is.EqualTo(new sbyte[] { 2, -2, 1, -1, 127, -127 }));
        Assert.That(q[8..].All(b => b == 0));
        Assert.That(Dequant8(q)[..6], Is.EqualTo(new[] { 4f, -4f, 2f, -2f, 254f, -254f }));
    }

    [Test]
    public void Q8_0InexactScaleIsStoredAsNearestHalf()
    {
        var x = new float[32];
        x[0] = 1f; x[1] = 0.3f; x[2] = -0.77f;
        var q = new byte[34];
        Quantizer.QuantizeQ8_0(x, q);
        // d = 1/127 = 0.0078740… = 2^-7 × 1.007874 → mantissa 0.007874 × 1024 = 8.06 → 8; exponent -7 + 15 = 8:
        // fp16 bits (8 << 10) | 8 = 0x2008. q = round(x · 127): 127, round(38.1) = 38, round(-97.79) = -98.
        Assert.That(q[..2], Is.EqualTo(new byte[] { 0x08, 0x20 }));
        Assert.That(q[2..5].Select(b => (sbyte)b), Is.EqualTo(new sbyte[] { 127, 38, -98 }));
    }

    [Test]
    public void Q8_0AllZeroBlockHasZeroScale()
    {
        var q = new byte[68];
        q.AsSpan().Fill(0xAA);
        Quantizer.QuantizeQ8_0(new float[64], q);
        Assert.That(q.All(b => b == 0));
        Assert.That(Dequant8(q).All(v => v == 0f));
    }

    [Test]
    public void Q8_0RoundTripErrorIsWithinHalfAStep([Values(1e-3, 1.0, 1e3)] double scale)
    {
        var rng = new Random(7);
        const int n = 32 * 64;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * scale * (1 + (i / 32) % 5));
        var q = new byte[n / 32 * 34];
        Quantizer.QuantizeQ8_0(x, q);
        float[] y = Dequant8(q);
        for (int b = 0; b < n / 32; b++)
        {
            double amax = x.Skip(32 * b).Take(32).Max(v => Math.Abs((double)v));
            double d = amax / 127, d16 = (double)(Half)(float)d;
            // half a quantization step, plus the error of storing d in fp16 (|q| ≤ 127), plus float slack
            double bound = d / 2 + 127 * Math.Abs(d - d16) + 1e-6 * amax;
            for (int j = 0; j < 32; j++)
                Assert.That(Math.Abs(x[32 * b + j] - y[32 * b + j]), Is.LessThanOrEqualTo(bound), $"block {b} element {j}");
        }
    }

    [Test]
    public void Q8_0Dequantize()
    {
        var q = new byte[34];
        q[0] = 0x00; q[1] = 0x38; // fp16 0.5
        q[2] = 0x80; q[3] = 0x7F; q[4] = 1; q[5] = 0xFF; // -128, 127, 1, -1
        Assert.That(Dequant8(q)[..5], Is.EqualTo(new[] { -64f, 63.5f, 0.5f, -0.5f, 0f }));
    }

    [Test]
    public void Q8_0RejectsBadInput()
    {
        Assert.That(() => Quantizer.QuantizeQ8_0(new float[31], new byte[34]), Throws.ArgumentException);
        Assert.That(() => Quantizer.QuantizeQ8_0(new float[32], new byte[33]), Throws.ArgumentException);
        var nan = new float[32]; nan[3] = float.NaN;
        Assert.That(() => Quantizer.QuantizeQ8_0(nan, new byte[34]), Throws.ArgumentException);
        Assert.That(() => Dequantizer.DequantizeQ8_0(new byte[33], new float[32]), Throws.ArgumentException);
    }

    [Test]
    public void Q4_0Dequantize()
    {
        // Block: fp16 d = -0.5 (0xB800), then byte j = element j (low nibble) | element j+16 (high nibble).
        var block = new byte[18];
        block[0] = 0x00; block[1] = 0xB8;
        for (int j = 0; j < 16; j++) block[2 + j] = (byte)(j | ((15 - j) << 4));
        var y = new float[32];
        Dequantizer.DequantizeQ4_0(block, y);
        for (int j = 0; j < 16; j++)
        {
            Assert.That(y[j], Is.EqualTo((j - 8) * -0.5f), $"element {j}");
            Assert.That(y[j + 16], Is.EqualTo((15 - j - 8) * -0.5f), $"element {j + 16}");
        }
    }

    /// <summary>
    /// Q4_K block (144 bytes): fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
    /// Packing of scale sc[s] and min m[s] of the 8 sub-blocks: for s &lt; 4, byte s = sc[s] (low 6 bits) and
    /// byte s+4 = m[s]; for s ≥ 4, byte s+4 = low 4 bits of sc[s] | low 4 bits of m[s] &lt;&lt; 4, and the top 2 bits
    /// of sc[s] / m[s] go to the top 2 bits of byte s−4 / byte s. Element e is in sub-block s = e/32; the nibbles
    /// are in 4 groups of 32 bytes: sub-block 2g in the low nibbles of group g, 2g+1 in the high ones.
    /// Value = d·sc[s]·q − dmin·m[s].
    /// </summary>
    [Test]
    public void Q4_KDequantize()
    {
        int[] sc = [1, 2, 17, 63, 33, 45, 63, 16];
        int[] m = [0, 5, 63, 9, 40, 50, 1, 31];
        var rng = new Random(3);
        var nibbles = new int[2 * 256];
        for (int i = 0; i < nibbles.Length; i++) nibbles[i] = rng.Next(16);

        var source = new byte[2 * 144];
        for (int blk = 0; blk < 2; blk++)
        {
            Span<byte> b = source.AsSpan(144 * blk, 144);
            b[0] = 0x00; b[1] = blk == 0 ? (byte)0x3C : (byte)0x34; // d = 1.0, then 0.25
            b[2] = 0x00; b[3] = 0x38;                                 // dmin = 0.5
            Span<byte> scales = b.Slice(4, 12);
            for (int s = 0; s < 4; s++)
            {
                scales[s] = (byte)(sc[s] | (sc[s + 4] >> 4) << 6);
                scales[s + 4] = (byte)(m[s] | (m[s + 4] >> 4) << 6);
                scales[s + 8] = (byte)((sc[s + 4] & 0xF) | (m[s + 4] & 0xF) << 4);
            }
            for (int e = 0; e < 256; e++)
            {
                int s = e / 32, g = s / 2, l = e % 32;
                b[16 + 32 * g + l] |= (byte)(nibbles[256 * blk + e] << (s % 2 == 0 ? 0 : 4));
            }
        }
        var y = new float[512];
        Dequantizer.DequantizeQ4_K(source, y);
        for (int e = 0; e < 512; e++)
        {
            double d = e < 256 ? 1.0 : 0.25;
            int s = e % 256 / 32;
            double expected = d * sc[s] * nibbles[e] - 0.5 * m[s];
            Assert.That(y[e], Is.EqualTo(expected), $"element {e}");
        }
    }

    /// <summary>
    /// Q6_K block (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], fp16 d.
    /// Element e (half h = e/128, r = e%128, quarter k = r/32, l = r%32): low bits in ql[64h + l + 32(k%2)]
    /// (low nibble for k &lt; 2, high nibble for k ≥ 2), high bits in qh[32h + l] bits 2k..2k+1; its scale is
    /// scales[e/16]. Value = d·scale·(q − 32).
    /// </summary>
    [Test]
    public void Q6_KDequantize()
    {
        var rng = new Random(5);
        sbyte[] scales = Enumerable.Range(0, 32).Select(i => (sbyte)(i * 37 % 256 - 128)).ToArray();
        var q = new int[512];
        for (int i = 0; i < q.Length; i++) q[i] = rng.Next(64);
        q[0] = 0; q[1] = 63; q[511] = 32;

        var source = new byte[2 * 210];
        for (int blk = 0; blk < 2; blk++)
        {
            Span<byte> b = source.AsSpan(210 * blk, 210);
            for (int e = 0; e < 256; e++)
            {
                int v = q[256 * blk + e], h = e / 128, r = e % 128, k = r / 32, l = r % 32;
                b[64 * h + l + 32 * (k % 2)] |= (byte)((v & 0xF) << (k < 2 ? 0 : 4));
                b[128 + 32 * h + l] |= (byte)((v >> 4) << (2 * k));
            }
            for (int s = 0; s < 16; s++) b[192 + s] = (byte)scales[16 * blk + s];
            b[208] = 0x00; b[209] = blk == 0 ? (byte)0x34 : (byte)0xC0; // d = 0.25, then -2.0
        }
        var y = new float[512];
        Dequantizer.DequantizeQ6_K(source, y);
        for (int e = 0; e < 512; e++)
        {
            double d = e < 256 ? 0.25 : -2.0;
            double expected = d * scales[e / 16] * (q[e] - 32);
            Assert.That(y[e], Is.EqualTo(expected), $"element {e}");
        }
    }

    [Test]
    public void F16Dequantize()
    {
        byte[] h = [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C]; // 1, -2, smallest subnormal 2^-24, +inf
        var y = new float[4];
        Dequantizer.DequantizeF16(h, y);
        Assert.That(y, Is.EqualTo(new[] { 1f, -2f, MathF.Pow(2, -24), float.PositiveInfinity }));
    }
}
