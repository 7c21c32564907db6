using System.Buffers.Binary;

namespace Gemma.Kernels;

// 4/5/6-bit quantizers: llama.cpp's reference (no importance matrix) quantizers, quantize_row_q4_0_ref,
// quantize_row_q4_K_ref, quantize_row_q5_K_ref and quantize_row_q6_K_ref with make_qkx2_quants / make_qx_quants
// (ggml/src/ggml-quants.c). Float expressions are evaluated in ggml's order without fused multiply-adds (ggml builds as
// ISO C11, where GCC does not contract); nearest_int is ggml's round-half-to-even (the 1.5·2²³ trick) = MathF.Round.
internal static partial class Quantizer
{
    private const float GroupMaxEps = 1e-15f;

    private static void CheckBlocks(ReadOnlySpan<float> source, Span<byte> destination, int blockSize, int blockBytes, string format)
    {
        if (source.Length % blockSize != 0)
            throw new ArgumentException($"{format} needs a multiple of {blockSize} elements, got {source.Length}.", nameof(source));
        long need = (long)source.Length / blockSize * blockBytes;
        if (destination.Length < need)
            throw new ArgumentException($"Destination needs {need} bytes, has {destination.Length}.", nameof(destination));
        foreach (float v in source)
            if (!float.IsFinite(v)) throw new ArgumentException($"{format} input contains NaN or infinity.", nameof(source));
    }

    private static int NearestInt(float f) => (int)MathF.Round(f);

    private static void WriteHalf(Span<byte> destination, float value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(destination, BitConverter.HalfToUInt16Bits((Half)value));

    private static float ReadHalf(ReadOnlySpan<byte> source) => F16Row.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source));

    /// <summary>
    /// float32 → Q4_0 (<c>quantize_row_q4_0_ref</c>): per 32, <c>d = max / −8</c> with max the element of largest
    /// magnitude (sign kept), <c>q = min(15, trunc(x/d + 8.5))</c>; byte j holds element j (low nibble) and j+16.
    /// </summary>
    /// <exception cref="ArgumentException">Bad lengths, or NaN/infinite input.</exception>
    public static void QuantizeQ4_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        CheckBlocks(source, destination, 32, Dequantizer.Q4_0BlockBytes, "Q4_0");
        for (int b = 0; b < source.Length / 32; b++)
        {
            ReadOnlySpan<float> x = source.Slice(b * 32, 32);
            Span<byte> y = destination.Slice(b * Dequantizer.Q4_0BlockBytes, Dequantizer.Q4_0BlockBytes);
            float amax = 0, max = 0;
            foreach (float v in x)
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            float d = max / -8, id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(y, d);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, (int)(x[j] * id + 8.5f)), q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
                y[2 + j] = (byte)(q0 | q1 << 4);
            }
        }
    }

    /// <summary>
    /// float32 → Q4_K (<c>quantize_row_q4_K_ref</c>): per sub-block of 32 a weighted least-squares scale and minimum
    /// (<c>make_qkx2_quants</c>, weights <c>rms + |x|</c>), both quantized to 6 bits against the super-block's largest
    /// (fp16 <c>d</c>, <c>dmin</c>), then every value re-rounded with the stored scales.
    /// </summary>
    /// <exception cref="ArgumentException">Length not a multiple of 256, short destination, or NaN/infinite input.</exception>
    public static void QuantizeQ4_K(ReadOnlySpan<float> source, Span<byte> destination) => QuantizeQ45_K(source, destination, false);

    /// <summary>float32 → Q5_K (<c>quantize_row_q5_K_ref</c>): as <see cref="QuantizeQ4_K"/> with 5-bit values.</summary>
    /// <exception cref="ArgumentException">Length not a multiple of 256, short destination, or NaN/infinite input.</exception>
    public static void QuantizeQ5_K(ReadOnlySpan<float> source, Span<byte> destination) => QuantizeQ45_K(source, destination, true);

    private static void QuantizeQ45_K(ReadOnlySpan<float> source, Span<byte> destination, bool five)
    {
        int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        int nmax = five ? 31 : 15;
        CheckBlocks(source, destination, Dequantizer.QK_K, blockBytes, five ? "Q5_K" : "Q4_K");
        Span<byte> L = stackalloc byte[Dequantizer.QK_K];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        for (int i = 0; i < source.Length / Dequantizer.QK_K; i++)
        {
            ReadOnlySpan<float> x = source.Slice(i * Dequantizer.QK_K, Dequantizer.QK_K);
            Span<byte> y = destination.Slice(i * blockBytes, blockBytes);
            y.Clear();
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++)
            {
                ReadOnlySpan<float> xj = x.Slice(32 * j, 32);
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) sumX2 += xj[l] * xj[l];
                float avX = MathF.Sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xj[l]);
                scales[j] = five
                    ? MakeQkx2Quants(32, nmax, xj, weights, L.Slice(32 * j, 32), out mins[j], laux, -0.5f, 0.1f, 15)
                    : MakeQkx2Quants(32, nmax, xj, weights, L.Slice(32 * j, 32), out mins[j], laux, -1f, 0.1f, 20);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f, invMin = maxMin > 0 ? 63f / maxMin : 0f;
            Span<byte> packed = y.Slice(4, 12);
            for (int j = 0; j < 8; j++)
            {
                int ls = Math.Min(63, (int)(byte)NearestInt(invScale * scales[j])), lm = Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
                if (j < 4) { packed[j] = (byte)ls; packed[j + 4] = (byte)lm; }
                else
                {
                    packed[j + 4] = (byte)((ls & 0xF) | (lm & 0xF) << 4);
                    packed[j - 4] |= (byte)(ls >> 4 << 6);
                    packed[j] |= (byte)(lm >> 4 << 6);
                }
            }
            WriteHalf(y, maxScale / 63f);
            WriteHalf(y[2..], maxMin / 63f);
            float dAll = ReadHalf(y), dminAll = ReadHalf(y[2..]);
            for (int j = 0; j < 8; j++)
            {
                ScaleMinK4(j, packed, out int sc, out int m);
                float d = dAll * sc;
                if (d == 0) continue;
                float dm = dminAll * m;
                for (int ii = 0; ii < 32; ii++) L[32 * j + ii] = (byte)Math.Clamp(NearestInt((x[32 * j + ii] + dm) / d), 0, nmax);
            }
            if (five)
            {
                Span<byte> qh = y.Slice(16, 32), ql = y.Slice(48, 128);
                for (int n = 0, g = 0; n < Dequantizer.QK_K; n += 64, g++)
                    for (int j = 0; j < 32; j++)
                    {
                        int l1 = L[n + j], l2 = L[n + j + 32];
                        if (l1 > 15) { l1 -= 16; qh[j] |= (byte)(1 << (2 * g)); }
                        if (l2 > 15) { l2 -= 16; qh[j] |= (byte)(2 << (2 * g)); }
                        ql[32 * g + j] = (byte)(l1 | l2 << 4);
                    }
            }
            else
            {
                Span<byte> q = y.Slice(16, 128);
                for (int n = 0, g = 0; n < Dequantizer.QK_K; n += 64, g++)
                    for (int l = 0; l < 32; l++) q[32 * g + l] = (byte)(L[n + l] | L[n + l + 32] << 4);
            }
        }
    }

    /// <summary>ggml's <c>get_scale_min_k4</c>.</summary>
    private static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4) { scale = q[j] & 63; min = q[j + 4] & 63; }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// ggml's <c>make_qkx2_quants</c>: asymmetric quantization of <paramref name="n"/> values to [0, nmax] minimizing
    /// the weighted squared error over a scan of <paramref name="nstep"/> + 1 trial scales; returns the scale and the
    /// (positive) minimum to subtract.
    /// </summary>
    private static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
        out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(0, Math.Min(nmax, NearestInt(iscale * (x[i] - min))));
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    curError += weights[i] * (diff * diff);
                }
                if (curError < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// float32 → Q6_K (<c>quantize_row_q6_K_ref</c>): per 16 a symmetric scale from <c>make_qx_quants</c> (x² weights,
    /// 19 trial scales), the 16 scales quantized to int8 against the largest (fp16 <c>d = max / −128</c>), then every
    /// value re-rounded to [−32, 31] with its stored scale.
    /// </summary>
    /// <exception cref="ArgumentException">Length not a multiple of 256, short destination, or NaN/infinite input.</exception>
    public static void QuantizeQ6_K(ReadOnlySpan<float> source, Span<byte> destination)
    {
        const int B = Dequantizer.Q6_KBlockBytes;
        CheckBlocks(source, destination, Dequantizer.QK_K, B, "Q6_K");
        Span<sbyte> L = stackalloc sbyte[Dequantizer.QK_K];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < source.Length / Dequantizer.QK_K; i++)
        {
            ReadOnlySpan<float> x = source.Slice(i * Dequantizer.QK_K, Dequantizer.QK_K);
            Span<byte> y = destination.Slice(i * B, B);
            y.Clear();
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
                scales[ib] = scale;
                if (MathF.Abs(scale) > maxAbsScale) { maxAbsScale = MathF.Abs(scale); maxScale = scale; }
            }
            if (maxAbsScale < GroupMaxEps) continue; // all-zero block (d = +0)
            float iscale = -128f / maxScale;
            WriteHalf(y[208..], 1 / iscale);
            Span<byte> sc = y.Slice(192, 16);
            for (int ib = 0; ib < 16; ib++) sc[ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            float dAll = ReadHalf(y[208..]);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * (sbyte)sc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
            }
            for (int h = 0; h < 2; h++)
            {
                Span<byte> ql = y.Slice(64 * h, 64), qh = y.Slice(128 + 32 * h, 32);
                int o = 128 * h;
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[o + l], q2 = L[o + l + 32], q3 = L[o + l + 64], q4 = L[o + l + 96];
                    ql[l] = (byte)((q1 & 0xF) | (q3 & 0xF) << 4);
                    ql[l + 32] = (byte)((q2 & 0xF) | (q4 & 0xF) << 4);
                    qh[l] = (byte)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
                }
            }
        }
    }

    /// <summary>
    /// ggml's <c>make_qx_quants</c> with <c>rmse_type = 1</c> and no importance weights: symmetric quantization to
    /// [−nmax, nmax − 1] (stored + nmax) choosing among 19 trial scales the one maximizing (Σw·x·l)²/Σw·l² with w = x².
    /// </summary>
    private static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i]))));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }
}
