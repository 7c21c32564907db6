using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>
/// Q4_1, Q5_0, Q5_1, Q5_K, Q2_K and Q3_K dequantization of blocks packed here from the layout description
/// (ggml-common.h), expected values computed from the format's formula, not by the code under test.
/// </summary>
[Category("Gguf")]
public class DequantizeMoreTests
{
    private static int[] RandomQuants(int count, int max, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(max + 1)).ToArray();
    }

    [Test]
    public void Q4_1()
    {
        // fp16 d = 0.5 (0x3800), fp16 m = -1.25 (0xBD00), byte j = element j | element j+16 << 4.
        var block = new byte[20];
        block[1] = 0x38; block[3] = 0xBD;
        for (int j = 0; j < 16; j++) block[4 + j] = (byte)(j | ((15 - j) << 4));
        var y = new float[32];
        Dequantizer.DequantizeQ4_1(block, y);
        for (int j = 0; j < 16; j++)
        {
            Assert.That(y[j], Is.EqualTo(j * 0.5f - 1.25f), $"element {j}");
            Assert.That(y[j + 16], Is.EqualTo((15 - j) * 0.5f - 1.25f), $"element {j + 16}");
        }
    }

    /// <summary>Packs 32 five-bit values: low nibbles as Q4_0, bit 4 of element e into bit e of a little-endian uint32.</summary>
    private static void Pack5(int[] q, Span<byte> qh, Span<byte> qs)
    {
        uint high = 0;
        for (int e = 0; e < 32; e++) high |= (uint)(q[e] >> 4) << e;
        qh[0] = (byte)high; qh[1] = (byte)(high >> 8); qh[2] = (byte)(high >> 16); qh[3] = (byte)(high >> 24);
        for (int j = 0; j < 16; j++) qs[j] = (byte)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
    }

    [Test]
    public void Q5_0()
    {
        int[] q = RandomQuants(32, 31, 1);
        q[0] = 31; q[17] = 0; q[31] = 16;
        var block = new byte[22];
        block[1] = 0x34; // d = 0.25
        Pack5(q, block.AsSpan(2, 4), block.AsSpan(6, 16));
        var y = new float[32];
        Dequantizer.DequantizeQ5_0(block, y);
        for (int e = 0; e < 32; e++) Assert.That(y[e], Is.EqualTo((q[e] - 16) * 0.25f), $"element {e}");
    }

    [Test]
    public void Q5_1()
    {
        int[] q = RandomQuants(64, 31, 2);
        var source = new byte[48];
        for (int b = 0; b < 2; b++)
        {
            Span<byte> block = source.AsSpan(24 * b, 24);
            block[1] = 0x38; block[3] = b == 0 ? (byte)0x40 : (byte)0xC0; // d = 0.5, m = 2 then -2
            Pack5(q[(32 * b)..], block.Slice(4, 4), block.Slice(8, 16));
        }
        var y = new float[64];
        Dequantizer.DequantizeQ5_1(source, y);
        for (int e = 0; e < 64; e++) Assert.That(y[e], Is.EqualTo(q[e] * 0.5f + (e < 32 ? 2f : -2f)), $"element {e}");
    }

    /// <summary>
    /// Q5_K block (176 bytes): fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins packed as in Q4_K, qh[32], qs[128].
    /// Element e: sub-block s = e/32, l = e%32; low 4 bits in the nibble of qs[32·(s/2) + l] (low for even s),
    /// bit 4 in bit s of qh[l]. Value = d·sc[s]·q − dmin·m[s].
    /// </summary>
    [Test]
    public void Q5_K()
    {
        int[] sc = [63, 1, 0, 12, 32, 47, 5, 60];
        int[] m = [7, 63, 0, 16, 48, 2, 33, 15];
        int[] q = RandomQuants(256, 31, 3);
        q[0] = 31; q[255] = 16;
        var b = new byte[176];
        b[1] = 0x38; b[3] = 0x34; // d = 0.5, dmin = 0.25
        for (int s = 0; s < 4; s++)
        {
            b[4 + s] = (byte)(sc[s] | (sc[s + 4] >> 4) << 6);
            b[4 + s + 4] = (byte)(m[s] | (m[s + 4] >> 4) << 6);
            b[4 + s + 8] = (byte)((sc[s + 4] & 0xF) | (m[s + 4] & 0xF) << 4);
        }
        for (int e = 0; e < 256; e++)
        {
            int s = e / 32, l = e % 32;
            b[48 + 32 * (s / 2) + l] |= (byte)((q[e] & 0xF) << (s % 2 == 0 ? 0 : 4));
            b[16 + l] |= (byte)((q[e] >> 4) << s);
        }
        var y = new float[256];
        Dequantizer.DequantizeQ5_K(b, y);
        for (int e = 0; e < 256; e++)
            Assert.That(y[e], Is.EqualTo(0.5 * sc[e / 32] * q[e] - 0.25 * m[e / 32]), $"element {e}");
    }

    /// <summary>
    /// Q2_K block (84 bytes): scales[16] (low nibble: step of sub-block s = e/16, high nibble: its minimum),
    /// qs[64], fp16 d, fp16 dmin. The 2-bit q of element e = 128h + 32j + r sits in bits 2j of qs[32h + r].
    /// Value = d·step·q − dmin·min.
    /// </summary>
    [Test]
    public void Q2_K()
    {
        int[] step = RandomQuants(16, 15, 4), min = RandomQuants(16, 15, 5), q = RandomQuants(256, 3, 6);
        var b = new byte[84];
        for (int s = 0; s < 16; s++) b[s] = (byte)(step[s] | min[s] << 4);
        for (int e = 0; e < 256; e++)
        {
            int h = e / 128, j = e % 128 / 32, r = e % 32;
            b[16 + 32 * h + r] |= (byte)(q[e] << (2 * j));
        }
        b[81] = 0x38; b[83] = 0x34; // d = 0.5, dmin = 0.25
        var y = new float[256];
        Dequantizer.DequantizeQ2_K(b, y);
        for (int e = 0; e < 256; e++)
            Assert.That(y[e], Is.EqualTo(0.5 * step[e / 16] * q[e] - 0.25 * min[e / 16]), $"element {e}");
    }

    /// <summary>
    /// Q3_K block (110 bytes): hmask[32], qs[64], scales[12], fp16 d. Sub-block s (e/16) has a 6-bit scale stored
    /// +32: low 4 bits in the low nibble of scales[s] (s &lt; 8) or the high nibble of scales[s−8], top 2 bits at
    /// bit 2·(s/4) of scales[8 + s%4]. The 3-bit q of element e = 128h + 32j + r: low 2 bits at bit 2j of
    /// qs[32h + r], third bit at bit 4h + j of hmask[r]. Value = d·(scale − 32)·(q − 4).
    /// </summary>
    [Test]
    public void Q3_K()
    {
        int[] scale = RandomQuants(16, 63, 7), q = RandomQuants(256, 7, 8);
        scale[0] = 0; scale[15] = 63;
        var b = new byte[110];
        for (int s = 0; s < 16; s++)
        {
            if (s < 8) b[96 + s] |= (byte)(scale[s] & 0xF);
            else b[96 + s - 8] |= (byte)((scale[s] & 0xF) << 4);
            b[96 + 8 + s % 4] |= (byte)((scale[s] >> 4) << (2 * (s / 4)));
        }
        for (int e = 0; e < 256; e++)
        {
            int h = e / 128, j = e % 128 / 32, r = e % 32;
            b[32 + 32 * h + r] |= (byte)((q[e] & 3) << (2 * j));
            b[r] |= (byte)((q[e] >> 2) << (4 * h + j));
        }
        b[109] = 0xC0; // d = -2
        var y = new float[256];
        Dequantizer.DequantizeQ3_K(b, y);
        for (int e = 0; e < 256; e++)
            Assert.That(y[e], Is.EqualTo(-2.0 * (scale[e / 16] - 32) * (q[e] - 4)), $"element {e}");
    }

    [Test]
    public void ShortSourcesAreRejected()
    {
        Assert.That(() => Dequantizer.DequantizeQ4_1(new byte[19], new float[32]), Throws.ArgumentException);
        Assert.That(() => Dequantizer.DequantizeQ5_0(new byte[21], new float[32]), Throws.ArgumentException);
        Assert.That(() => Dequantizer.DequantizeQ5_1(new byte[23], new float[32]), Throws.ArgumentException);
        Assert.That(() => Dequantizer.DequantizeQ5_K(new byte[175], new float[256]), Throws.ArgumentException);
        Assert.That(() => Dequantizer.DequantizeQ4_K(new byte[144], new float[255]), Throws.ArgumentException);
    }
}
