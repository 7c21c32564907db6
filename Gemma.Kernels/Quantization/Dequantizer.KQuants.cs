namespace Gemma.Kernels;

// k-quants: super-blocks of QK_K = 256 elements (ggml-common.h block_q2_K … block_q6_K).
internal static partial class Dequantizer
{
    /// <summary>
    /// The 6-bit scale and minimum of sub-block <paramref name="j"/> (0..7) from Q4_K/Q5_K's 12 packed bytes
    /// (ggml's <c>get_scale_min_k4</c>): sub-blocks 0–3 use the low 6 bits of bytes j (scale) and j+4 (min);
    /// sub-blocks 4–7 take their low 4 bits from the nibbles of byte j+4 and their top 2 bits from the top bits
    /// of bytes j−4 (scale) and j (min).
    /// </summary>
    private static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// Q4_K → float32 (<c>dequantize_row_q4_K</c>). A super-block of 256 is 8 sub-blocks of 32; sub-block s has
    /// scale <c>d·sc[s]</c> and minimum <c>dmin·m[s]</c>, value = scale · q − minimum with 4-bit q. The 128 bytes
    /// of qs are 4 groups of 32: group g holds sub-block 2g in the low nibbles and 2g+1 in the high nibbles.
    /// </summary>
    public static void DequantizeQ4_K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, QK_K, Q4_KBlockBytes, "Q4_K");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q4_KBlockBytes, Q4_KBlockBytes);
            Span<float> y = destination.Slice(i * QK_K, QK_K);
            float d = Fp16(x);
            float dmin = Fp16(x.Slice(2));
            ReadOnlySpan<byte> scales = x.Slice(4, 12);
            ReadOnlySpan<byte> qs = x.Slice(16, 128);
            int o = 0;
            for (int g = 0; g < 4; g++)
            {
                ScaleMinK4(2 * g, scales, out int sc, out int m);
                float d1 = d * sc, m1 = dmin * m;
                ScaleMinK4(2 * g + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = dmin * m;
                ReadOnlySpan<byte> q = qs.Slice(32 * g, 32);
                for (int l = 0; l < 32; l++) y[o++] = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) y[o++] = d2 * (q[l] >> 4) - m2;
            }
        }
    }

    /// <summary>
    /// Q5_K → float32 (<c>dequantize_row_q5_K</c>). Block (176 bytes): <c>fp16 d; fp16 dmin; uint8 scales[12];
    /// uint8 qh[32]; uint8 qs[128]</c>. As Q4_K (same scales, same nibble groups), plus a fifth bit: element l of
    /// sub-block s takes bit s of <c>qh[l]</c> as 16. Value = d·sc·q − dmin·m with 5-bit q.
    /// </summary>
    public static void DequantizeQ5_K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, QK_K, Q5_KBlockBytes, "Q5_K");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q5_KBlockBytes, Q5_KBlockBytes);
            Span<float> y = destination.Slice(i * QK_K, QK_K);
            float d = Fp16(x);
            float dmin = Fp16(x.Slice(2));
            ReadOnlySpan<byte> scales = x.Slice(4, 12);
            ReadOnlySpan<byte> qh = x.Slice(16, 32);
            ReadOnlySpan<byte> qs = x.Slice(48, 128);
            int o = 0;
            for (int g = 0; g < 4; g++)
            {
                ScaleMinK4(2 * g, scales, out int sc, out int m);
                float d1 = d * sc, m1 = dmin * m;
                ScaleMinK4(2 * g + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = dmin * m;
                int u1 = 1 << (2 * g), u2 = 2 << (2 * g);
                ReadOnlySpan<byte> ql = qs.Slice(32 * g, 32);
                for (int l = 0; l < 32; l++) y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    /// <summary>
    /// Q6_K → float32 (<c>dequantize_row_q6_K</c>). A super-block of 256 is two halves of 128; 16 sub-blocks of
    /// 16 each have an int8 scale; value = d · scale · (q − 32) with 6-bit q made of 4 low bits from <c>ql</c>
    /// and 2 high bits from <c>qh</c>. In half h (ql+64h, qh+32h, scales+8h), for l in 0..31:
    /// element l uses ql[l] low nibble and qh[l] bits 0–1, element l+32 ql[l+32] low and qh bits 2–3,
    /// element l+64 ql[l] high and qh bits 4–5, element l+96 ql[l+32] high and qh bits 6–7.
    /// </summary>
    public static void DequantizeQ6_K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, QK_K, Q6_KBlockBytes, "Q6_K");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q6_KBlockBytes, Q6_KBlockBytes);
            Span<float> y = destination.Slice(i * QK_K, QK_K);
            float d = Fp16(x.Slice(208));
            for (int h = 0; h < 2; h++)
            {
                ReadOnlySpan<byte> ql = x.Slice(64 * h, 64);
                ReadOnlySpan<byte> qh = x.Slice(128 + 32 * h, 32);
                ReadOnlySpan<byte> sc = x.Slice(192 + 8 * h, 8);
                Span<float> yh = y.Slice(128 * h, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    yh[l] = d * (sbyte)sc[s] * q1;
                    yh[l + 32] = d * (sbyte)sc[s + 2] * q2;
                    yh[l + 64] = d * (sbyte)sc[s + 4] * q3;
                    yh[l + 96] = d * (sbyte)sc[s + 6] * q4;
                }
            }
        }
    }

    /// <summary>
    /// Q2_K → float32 (<c>dequantize_row_q2_K</c>). Block (84 bytes): <c>uint8 scales[16]; uint8 qs[64];
    /// fp16 d; fp16 dmin</c>. Sub-block s = e/16 of element e has scale byte <c>scales[s]</c>: low nibble × d is
    /// the step, high nibble × dmin the minimum. The 2-bit q of element e = 128h + 32j + r (h half, j 0..3,
    /// r 0..31) is bits 2j..2j+1 of <c>qs[32h + r]</c>. Value = d·(sc &amp; 15)·q − dmin·(sc &gt;&gt; 4).
    /// </summary>
    public static void DequantizeQ2_K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, QK_K, Q2_KBlockBytes, "Q2_K");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q2_KBlockBytes, Q2_KBlockBytes);
            Span<float> y = destination.Slice(i * QK_K, QK_K);
            ReadOnlySpan<byte> scales = x[..16];
            float d = Fp16(x.Slice(80)), min = Fp16(x.Slice(82));
            int o = 0, s = 0;
            for (int h = 0; h < 2; h++)
            {
                ReadOnlySpan<byte> q = x.Slice(16 + 32 * h, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int half = 0; half < 32; half += 16)
                    {
                        int sc = scales[s++];
                        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                        for (int l = 0; l < 16; l++) y[o++] = dl * ((q[half + l] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Q3_K → float32 (<c>dequantize_row_q3_K</c>). Block (110 bytes): <c>uint8 hmask[32]; uint8 qs[64];
    /// uint8 scales[12]; fp16 d</c>. The 6-bit scale of sub-block s (0..15, 16 elements each) has its low 4
    /// bits in <c>scales[s]</c> (s &lt; 8, low nibble) or <c>scales[s−8]</c> (high nibble), its top 2 bits in
    /// bits 2(s/4).. of <c>scales[8 + s%4]</c>, and is stored +32. Element e = 128h + 32j + r: low 2 bits are
    /// bits 2j.. of <c>qs[32h + r]</c>; if bit 4h+j of <c>hmask[r]</c> is clear, 4 is subtracted.
    /// Value = d·(scale − 32)·(q − (hbit ? 0 : 4)).
    /// </summary>
    public static void DequantizeQ3_K(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, QK_K, Q3_KBlockBytes, "Q3_K");
        Span<int> scale = stackalloc int[16];
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q3_KBlockBytes, Q3_KBlockBytes);
            Span<float> y = destination.Slice(i * QK_K, QK_K);
            ReadOnlySpan<byte> hmask = x[..32], packed = x.Slice(96, 12);
            float d = Fp16(x.Slice(108));
            for (int s = 0; s < 16; s++)
            {
                int low = s < 8 ? packed[s] & 0xF : packed[s - 8] >> 4;
                scale[s] = (low | (((packed[8 + s % 4] >> (2 * (s / 4))) & 3) << 4)) - 32;
            }
            int o = 0, sub = 0;
            for (int h = 0; h < 2; h++)
            {
                ReadOnlySpan<byte> q = x.Slice(32 + 32 * h, 32);
                for (int j = 0; j < 4; j++)
                {
                    int shift = 2 * j, m = 1 << (4 * h + j);
                    for (int half = 0; half < 32; half += 16)
                    {
                        float dl = d * scale[sub++];
                        for (int l = 0; l < 16; l++)
                            y[o++] = dl * (((q[half + l] >> shift) & 3) - ((hmask[half + l] & m) != 0 ? 0 : 4));
                    }
                }
            }
        }
    }
}
