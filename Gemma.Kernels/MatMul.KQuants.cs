using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// 4/5/6-bit ggml weights (Q4_0, Q4_K, Q5_K, Q6_K) read in place and multiplied with the int8 activations of the
/// Q8_0 path (<see cref="QuantizeActivations"/>: blocks of 32, float32 scale <c>dx</c>).
/// </summary>
/// <remarks>
/// ggml pairs the K-quants with Q8_K activations (one scale per 256); we keep one activation format for every weight
/// type, with a scale per 32 — finer, so the activation rounding error is at most llama.cpp's — at the cost of one
/// float multiply-add per 32 elements instead of per 256 (decode is bound by reading the weights, not by that).
/// For each 32-element activation block j the weight side gives an exact integer, so per block:
/// <list type="bullet">
/// <item>Q4_0 (<c>w = d·(q − 8)</c>): <c>term = (Σ (q − 8)·qx) · (d · dx)</c>.</item>
/// <item>Q4_K / Q5_K (<c>w = d·sc·q − dmin·m</c>, q 4/5 bits, sc and m 6 bits per sub-block of 32):
/// <c>term = ((d·sc)·dx) · Σ q·qx − (dmin·m) · (dx · Σ qx)</c> — the two float factors are ggml's <c>d1</c>, <c>m1</c>.</item>
/// <item>Q6_K (<c>w = d·sc·(q − 32)</c>, int8 sc per 16): <c>term = (d·dx) · Σ_{two 16-groups} sc · Σ (q − 32)·qx</c>.</item>
/// </list>
/// The integers are exact in every path; SIMD paths differ from the scalar references only in the order of the float32
/// sum over blocks. The SIMD forms avoid the sign trick: weights are unsigned bytes (≤ 63), so vpmaddubsw(q, qx) takes
/// them directly, and the offsets of Q4_0/Q6_K subtract vpmaddubsw(8 or 32, qx) in int16 (pair sums ≤ 2·63·128, no
/// saturation). Rows must be a multiple of 32 (Q4_0) or 256 (K-quants) elements.
/// Files: this file (scalar references, dispatch), <c>MatMul.KQuants.V512.cs</c>, <c>MatMul.KQuants.V256.cs</c>,
/// <c>MatMul.KQuants.V128.cs</c> (ARM64 SDOT / x86 SSSE3).
/// </remarks>
internal static unsafe partial class MatMul
{
    private const int QK = Dequantizer.QK_K;

    /// <summary>True for weight types multiplied with int8 activations.</summary>
    internal static bool UsesInt8Activations(WeightType type) => type is WeightType.Q8_0 or WeightType.Q4_0
        or WeightType.Q4_K or WeightType.Q5_K or WeightType.Q6_K;

    /// <summary>
    /// The 8 six-bit scales (bytes 0–7 of <paramref name="scales"/>) and mins (of <paramref name="mins"/>) of a
    /// Q4_K/Q5_K super-block from its 12 packed bytes — ggml's <c>kmask</c> unpacking, equal to <c>get_scale_min_k4</c>
    /// for j = 0..7: sub-blocks 0–3 are the low 6 bits of bytes 0–3 (scale) and 4–7 (min); 4–7 take their low 4 bits
    /// from the nibbles of bytes 8–11 and their top 2 bits from the top bits of bytes 0–3 (scale) and 4–7 (min).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScaleMinK4(byte* packed, out ulong scales, out ulong mins)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        uint scLo = u0 & 0x3F3F3F3Fu, scHi = (u2 & 0x0F0F0F0Fu) | ((u0 >> 6) & 0x03030303u) << 4;
        uint mLo = u1 & 0x3F3F3F3Fu, mHi = ((u2 >> 4) & 0x0F0F0F0Fu) | ((u1 >> 6) & 0x03030303u) << 4;
        scales = scLo | (ulong)scHi << 32;
        mins = mLo | (ulong)mHi << 32;
    }

    /// <summary>Q4_K/Q5_K use <see cref="BlockSums"/>.</summary>
    internal static bool NeedsBlockSums(WeightType type) => type is WeightType.Q4_K or WeightType.Q5_K;

    /// <summary>
    /// <c>sums[b] = dx_b · Σ qx</c> over each 32-block: the activation side of the Q4_K/Q5_K minimum term, the same for
    /// every weight row, so it is computed once per call instead of once per row.
    /// </summary>
    internal static void BlockSums(sbyte* xq, float* xs, int blocks, float* sums)
    {
        for (int b = 0; b < blocks; b++, xq += 32)
        {
            int s = 0;
            for (int j = 0; j < 32; j++) s += xq[j];
            sums[b] = xs[b] * s;
        }
    }

    /// <summary>Scalar reference, Q4_0 row · int8 activations (<paramref name="blocks"/> blocks of 32).</summary>
    internal static float DotQ4_0Scalar(byte* row, sbyte* xq, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* block = row + b * Dequantizer.Q4_0BlockBytes;
            sbyte* x = xq + b * 32;
            int dot = 0;
            for (int j = 0; j < 16; j++)
                dot += ((block[2 + j] & 0xF) - 8) * x[j] + ((block[2 + j] >> 4) - 8) * x[j + 16];
            sum += dot * (BlockScale(block) * xs[b]);
        }
        return sum;
    }

    /// <summary>Scalar reference, Q4_K row · int8 activations (<paramref name="superBlocks"/> blocks of 256).</summary>
    internal static float DotQ4_KScalar(byte* row, sbyte* xq, float* xs, int superBlocks) => DotQ45_KScalar(row, xq, xs, superBlocks, false);

    /// <summary>Scalar reference, Q5_K row · int8 activations (<paramref name="superBlocks"/> blocks of 256).</summary>
    internal static float DotQ5_KScalar(byte* row, sbyte* xq, float* xs, int superBlocks) => DotQ45_KScalar(row, xq, xs, superBlocks, true);

    private static float DotQ45_KScalar(byte* row, sbyte* xq, float* xs, int superBlocks, bool five)
    {
        int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        float sum = 0;
        for (int i = 0; i < superBlocks; i++)
        {
            byte* block = row + i * blockBytes;
            float d = BlockScale(block), dmin = BlockScale(block + 2);
            UnpackScaleMinK4(block + 4, out ulong scales, out ulong mins);
            byte* qh = block + 16;                    // Q5_K only
            byte* qs = block + (five ? 48 : 16);
            for (int j = 0; j < 8; j++)               // sub-block j: nibble group j/2, low nibbles for even j
            {
                sbyte* x = xq + i * QK + j * 32;
                byte* q = qs + 32 * (j / 2);
                int shift = 4 * (j & 1), dot = 0, xsum = 0;
                for (int l = 0; l < 32; l++)
                {
                    int w = (q[l] >> shift) & 0xF;
                    if (five) w |= ((qh[l] >> j) & 1) << 4;
                    dot += w * x[l];
                    xsum += x[l];
                }
                float dx = xs[i * 8 + j];
                float d1 = d * (byte)(scales >> (8 * j)), m1 = dmin * (byte)(mins >> (8 * j));
                sum += d1 * dx * dot - m1 * (dx * xsum);
            }
        }
        return sum;
    }

    /// <summary>Scalar reference, Q6_K row · int8 activations (<paramref name="superBlocks"/> blocks of 256).</summary>
    internal static float DotQ6_KScalar(byte* row, sbyte* xq, float* xs, int superBlocks)
    {
        float sum = 0;
        for (int i = 0; i < superBlocks; i++)
        {
            byte* block = row + i * Dequantizer.Q6_KBlockBytes;
            float d = BlockScale(block + 208);
            for (int h = 0; h < 2; h++)
            {
                byte* ql = block + 64 * h, qh = block + 128 + 32 * h;
                sbyte* sc = (sbyte*)block + 192 + 8 * h;
                // Sub-block k (32 elements 32k … of this half): ql[32(k&1) + l] nibble k/2, qh[l] bits 2k, 2k+1.
                for (int k = 0; k < 4; k++)
                {
                    sbyte* x = xq + i * QK + 128 * h + 32 * k;
                    int total = 0;
                    for (int g = 0; g < 2; g++)
                    {
                        int dot = 0;
                        for (int l = 16 * g; l < 16 * g + 16; l++)
                        {
                            int q = ((ql[32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF) | ((qh[l] >> (2 * k)) & 3) << 4;
                            dot += (q - 32) * x[l];
                        }
                        total += sc[2 * k + g] * dot;
                    }
                    sum += total * (d * xs[i * 8 + 4 * h + k]);
                }
            }
        }
        return sum;
    }

    /// <summary>One weight row · one token's int8 activations, per type; the width is chosen at JIT time.</summary>
    internal interface IQuantRowDot
    {
        /// <summary>
        /// Dot of a row of <paramref name="cols"/> elements with quantized activations; <paramref name="xsums"/> holds
        /// <see cref="BlockSums"/> for Q4_K/Q5_K (unused otherwise).
        /// </summary>
        static abstract float Dot(byte* row, sbyte* xq, float* xs, float* xsums, int cols);
        /// <summary>The scalar reference of <see cref="Dot"/>.</summary>
        static abstract float DotScalar(byte* row, sbyte* xq, float* xs, int cols);
    }

    internal readonly struct Q4_0Dot : IQuantRowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, float* xsums, int cols) =>
            Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? KQuantV512.DotQ4_0(row, xq, xs, cols / 32)
            : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? KQuantV256.DotQ4_0(row, xq, xs, cols / 32)
            : Int8V128.IsSupported ? KQuantV128.DotQ4_0(row, xq, xs, cols / 32)
            : DotQ4_0Scalar(row, xq, xs, cols / 32);
        public static float DotScalar(byte* row, sbyte* xq, float* xs, int cols) => DotQ4_0Scalar(row, xq, xs, cols / 32);
    }

    internal readonly struct Q4_KDot : IQuantRowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, float* xsums, int cols) =>
            Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? KQuantV512.DotQ45_K(row, xq, xs, xsums, cols / QK, false)
            : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? KQuantV256.DotQ45_K(row, xq, xs, xsums, cols / QK, false)
            : Int8V128.IsSupported ? KQuantV128.DotQ45_K(row, xq, xs, xsums, cols / QK, false)
            : DotQ4_KScalar(row, xq, xs, cols / QK);
        public static float DotScalar(byte* row, sbyte* xq, float* xs, int cols) => DotQ4_KScalar(row, xq, xs, cols / QK);
    }

    internal readonly struct Q5_KDot : IQuantRowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, float* xsums, int cols) =>
            Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? KQuantV512.DotQ45_K(row, xq, xs, xsums, cols / QK, true)
            : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? KQuantV256.DotQ45_K(row, xq, xs, xsums, cols / QK, true)
            : Int8V128.IsSupported ? KQuantV128.DotQ45_K(row, xq, xs, xsums, cols / QK, true)
            : DotQ5_KScalar(row, xq, xs, cols / QK);
        public static float DotScalar(byte* row, sbyte* xq, float* xs, int cols) => DotQ5_KScalar(row, xq, xs, cols / QK);
    }

    internal readonly struct Q6_KDot : IQuantRowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, float* xsums, int cols) =>
            Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? KQuantV512.DotQ6_K(row, xq, xs, cols / QK)
            : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? KQuantV256.DotQ6_K(row, xq, xs, cols / QK)
            : Int8V128.IsSupported ? KQuantV128.DotQ6_K(row, xq, xs, cols / QK)
            : DotQ6_KScalar(row, xq, xs, cols / QK);
        public static float DotScalar(byte* row, sbyte* xq, float* xs, int cols) => DotQ6_KScalar(row, xq, xs, cols / QK);
    }

    /// <summary>
    /// Output rows [r0, r1) for all tokens: the packed GEMM (<c>MatMul.KQuants.Gemm.cs</c>) for n ≥
    /// <see cref="GemmMinTokens"/> where the width has one, else each row read once and every token's dot taken while
    /// it is in L1.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
    private static void RunQuant<TDot>(in WeightMatrix w, sbyte* xq, float* xs, float* xsums, float* y, int n, int r0, int r1) where TDot : IQuantRowDot
    {
        if (n >= GemmMinTokens && KQuantGemm<TDot>(w, xq, xs, xsums, y, n, r0, r1)) return;
        int cols = w.Cols, rows = w.Rows, blocks = cols / Q8_0.BlockSize;
        long rb = w.RowBytes;
        for (int r = r0; r < r1; r++)
        {
            byte* row = w.Data + r * rb;
            for (int t = 0; t < n; t++)
                y[(long)t * rows + r] = TDot.Dot(row, xq + (long)t * cols, xs + (long)t * blocks, xsums + (long)t * blocks, cols);
        }
    }

    /// <summary>Scalar reference of the whole Linear for every int8-activation type, Q8_0 and the 4/5/6-bit ones (quantize
    /// with <see cref="QuantizeScalar"/>, then the scalar row dots).</summary>
    internal static void LinearQuantScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n)
    {
        CheckShapes(w, x, y, n);
        int blocks = w.Cols / Q8_0.BlockSize;
        var q = new sbyte[Math.Max(1, n * w.Cols)];
        var s = new float[Math.Max(1, n * blocks)];
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        fixed (float* ps = s)
        {
            QuantizeScalar(px, n * blocks, pq, ps);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < w.Rows; r++)
                {
                    byte* row = w.Row(r);
                    sbyte* xq = pq + (long)t * w.Cols;
                    float* xs = ps + (long)t * blocks;
                    y[t * w.Rows + r] = w.Type switch
                    {
                        WeightType.Q4_0 => Q4_0Dot.DotScalar(row, xq, xs, w.Cols),
                        WeightType.Q4_K => Q4_KDot.DotScalar(row, xq, xs, w.Cols),
                        WeightType.Q5_K => Q5_KDot.DotScalar(row, xq, xs, w.Cols),
                        WeightType.Q6_K => Q6_KDot.DotScalar(row, xq, xs, w.Cols),
                        WeightType.Q8_0 => DotQ8Scalar(row, xq, xs, blocks),
                        _ => throw new ArgumentOutOfRangeException(nameof(w)),
                    };
                }
        }
    }
}
