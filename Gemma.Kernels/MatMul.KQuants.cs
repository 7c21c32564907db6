using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// 4/5/6-bit ggml weights (Q4_0, Q4_K, Q5_K, Q6_K) read in place. Q4_0 is multiplied with the Q8_0 activations
/// (<see cref="QuantizeActivations"/>: blocks of 32, float32 scale); the K-quants with ggml's Q8_K activations
/// (<see cref="QuantizeQ8K"/>: int8 values with one float32 scale <c>d8</c> per 256, and the sums <c>bsums</c> of
/// each 16 int8 values), so the whole super-block is one exact integer sum and costs one float multiply-add.
/// </summary>
/// <remarks>
/// Per block (ggml's <c>ggml_vec_dot_*_q8_K</c>):
/// <list type="bullet">
/// <item>Q4_0 (<c>w = d·(q − 8)</c>, per 32 with Q8_0 activations): <c>term = (Σ (q − 8)·qx) · (d · dx)</c>.</item>
/// <item>Q4_K / Q5_K (<c>w = d·sc·q − dmin·m</c>, q 4/5 bits, sc and m 6 bits per sub-block of 32), per super-block:
/// <c>(d·d8) · Σ_j sc_j·Σ q·qx − (dmin·d8) · Σ_j m_j·(bsums[2j] + bsums[2j+1])</c>.</item>
/// <item>Q6_K (<c>w = d·sc·(q − 32)</c>, int8 sc per 16): <c>(d·d8) · Σ_g sc_g·(Σ q·qx − 32·bsums[g])</c>.</item>
/// </list>
/// Both integer sums are exact in every path (|Σ| ≤ 256·63·127·128 &lt; 2³¹); SIMD paths differ from the scalar
/// references only in the order of the float32 sum over super-blocks. No sign trick: the weights are unsigned bytes
/// (≤ 63), so vpmaddubsw(q, qx) takes them directly (pair sums ≤ 2·63·127 &lt; 2¹⁵), the sub-block scales multiply
/// the int16 pair sums in vpmaddwd, and Q6_K's offset 32 is taken from <c>bsums</c> once per super-block. The
/// activation rounding error is ggml's (a scale per 256, not per 32). Rows must be a multiple of 32 (Q4_0) or 256
/// (K-quants) elements.
/// Decode and batches run the same row kernel, generic over the number of tokens in flight (1–4): the weights of a
/// super-block are unpacked once and every token's integer sum follows, each token's operations the same for any
/// count — a token's result is bit-identical alone and in a batch.
/// Files: this file (Q8_K quantizer, scalar references, dispatch), <c>MatMul.KQuants.V512.cs</c>,
/// <c>MatMul.KQuants.V256.cs</c>, <c>MatMul.KQuants.V128.cs</c> (ARM64 SDOT / x86 SSSE3), <c>MatMul.KQuants.Gemm.cs</c>
/// (the Q4_0 packed GEMM).
/// </remarks>
internal static unsafe partial class MatMul
{
    private const int QK = Dequantizer.QK_K;

    /// <summary>True for weight types multiplied with Q8_0 int8 activations (blocks of 32).</summary>
    internal static bool UsesInt8Activations(WeightType type) => type is WeightType.Q8_0 or WeightType.Q4_0;

    /// <summary>True for weight types multiplied with Q8_K activations (blocks of 256).</summary>
    internal static bool UsesQ8KActivations(WeightType type) => type is WeightType.Q4_K or WeightType.Q5_K or WeightType.Q6_K;

    /// <summary>
    /// ggml's Q8_K activations of n tokens: token t's int8 values at <c>Q + t·cols</c>, its super-block scales at
    /// <c>D + t·cols/256</c> and its 16-element sums at <c>BSums + t·cols/16</c>.
    /// </summary>
    internal readonly struct Q8K(sbyte* q, float* d, short* bsums)
    {
        public readonly sbyte* Q = q;
        public readonly float* D = d;
        public readonly short* BSums = bsums;

        /// <summary>The activations of token <paramref name="t"/> (rows of <paramref name="cols"/> elements).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Q8K Token(long t, int cols) => new(Q + t * cols, D + t * (cols / QK), BSums + t * (cols / 16));
    }

    /// <summary>
    /// Quantizes <paramref name="superBlocks"/> blocks of 256 floats to Q8_K: <c>d8 = max|x| / 127</c>,
    /// <c>q = round-to-even(x / d8)</c> (the Q8_0 rule on 256 elements), <c>bsums[g] = Σ q</c> over each 16. One
    /// Vector128 form on every path (max is order-free and the rest is per element), so every path quantizes bit for bit
    /// like <see cref="QuantizeQ8KScalar"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8K(float* x, int superBlocks, sbyte* q, float* d, short* bsums)
    {
        if (!Vector128.IsHardwareAccelerated) { QuantizeQ8KScalar(x, superBlocks, q, d, bsums); return; }
        for (int i = 0; i < superBlocks; i++, x += QK, q += QK, bsums += 16)
        {
            Vector128<float> m = Vector128<float>.Zero;
            for (int j = 0; j < QK; j += 8)
                m = Vector128.Max(m, Vector128.Max(Vector128.Abs(Vector128.Load(x + j)), Vector128.Abs(Vector128.Load(x + j + 4))));
            float amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
            float scale = amax / 127f;
            var inv = Vector128.Create(InverseScale(scale));
            for (int g = 0; g < 16; g++)
            {
                float* xg = x + 16 * g;
                Vector128<int> i0 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(xg) * inv));
                Vector128<int> i1 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(xg + 4) * inv));
                Vector128<int> i2 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(xg + 8) * inv));
                Vector128<int> i3 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(xg + 12) * inv));
                Vector128.Narrow(Vector128.Narrow(i0, i1), Vector128.Narrow(i2, i3)).Store(q + 16 * g);
                bsums[g] = (short)Vector128.Sum(i0 + i1 + i2 + i3);
            }
            d[i] = scale;
        }
    }

    /// <summary>Scalar reference of <see cref="QuantizeQ8K"/>.</summary>
    internal static void QuantizeQ8KScalar(float* x, int superBlocks, sbyte* q, float* d, short* bsums)
    {
        for (int i = 0; i < superBlocks; i++, x += QK, q += QK, bsums += 16)
        {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float scale = amax / 127f, inv = InverseScale(scale);
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int j = 16 * g; j < 16 * g + 16; j++)
                {
                    int v = (int)MathF.Round(x[j] * inv);   // |x·inv| ≤ 127, ties to even
                    q[j] = (sbyte)v;
                    sum += v;
                }
                bsums[g] = (short)sum;                      // |Σ| ≤ 16·127
            }
            d[i] = scale;
        }
    }

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

    /// <summary>Scalar reference, Q4_0 row · Q8_0 activations (<paramref name="blocks"/> blocks of 32).</summary>
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

    /// <summary>Scalar reference, Q4_K row · Q8_K activations of one token (ggml's <c>ggml_vec_dot_q4_K_q8_K</c>).</summary>
    internal static float DotQ4_KScalar(byte* row, Q8K x, int cols) => DotQ45_KScalar(row, x, cols / QK, false);

    /// <summary>Scalar reference, Q5_K row · Q8_K activations of one token (ggml's <c>ggml_vec_dot_q5_K_q8_K</c>).</summary>
    internal static float DotQ5_KScalar(byte* row, Q8K x, int cols) => DotQ45_KScalar(row, x, cols / QK, true);

    private static float DotQ45_KScalar(byte* row, Q8K x, int superBlocks, bool five)
    {
        int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        float sum = 0;
        for (int i = 0; i < superBlocks; i++)
        {
            byte* block = row + i * blockBytes;
            UnpackScaleMinK4(block + 4, out ulong scales, out ulong mins);
            byte* qh = block + 16;                    // Q5_K only
            byte* qs = block + (five ? 48 : 16);
            short* bsums = x.BSums + 16 * i;
            int isum = 0, msum = 0;
            for (int j = 0; j < 8; j++)               // sub-block j: nibble group j/2, low nibbles for even j
            {
                sbyte* xj = x.Q + i * QK + j * 32;
                byte* q = qs + 32 * (j / 2);
                int shift = 4 * (j & 1), dot = 0;
                for (int l = 0; l < 32; l++)
                {
                    int w = (q[l] >> shift) & 0xF;
                    if (five) w |= ((qh[l] >> j) & 1) << 4;
                    dot += w * xj[l];
                }
                isum += (byte)(scales >> (8 * j)) * dot;
                msum += (byte)(mins >> (8 * j)) * (bsums[2 * j] + bsums[2 * j + 1]);
            }
            float d8 = x.D[i];
            sum += BlockScale(block) * d8 * isum - BlockScale(block + 2) * d8 * msum;
        }
        return sum;
    }

    /// <summary>Scalar reference, Q6_K row · Q8_K activations of one token (ggml's <c>ggml_vec_dot_q6_K_q8_K</c>).</summary>
    internal static float DotQ6_KScalar(byte* row, Q8K x, int cols)
    {
        float sum = 0;
        for (int i = 0; i < cols / QK; i++)
        {
            byte* block = row + i * Dequantizer.Q6_KBlockBytes;
            int isum = 0;
            for (int h = 0; h < 2; h++)
            {
                byte* ql = block + 64 * h, qh = block + 128 + 32 * h;
                sbyte* sc = (sbyte*)block + 192 + 8 * h;
                // Sub-block k (32 elements 32k … of this half): ql[32(k&1) + l] nibble k/2, qh[l] bits 2k, 2k+1.
                for (int k = 0; k < 4; k++)
                {
                    sbyte* xk = x.Q + i * QK + 128 * h + 32 * k;
                    for (int g = 0; g < 2; g++)
                    {
                        int dot = 0;
                        for (int l = 16 * g; l < 16 * g + 16; l++)
                        {
                            int q = ((ql[32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF) | ((qh[l] >> (2 * k)) & 3) << 4;
                            dot += (q - 32) * xk[l];
                        }
                        isum += sc[2 * k + g] * dot;
                    }
                }
            }
            sum += BlockScale(block + 208) * x.D[i] * isum;
        }
        return sum;
    }

    /// <summary>One Q4_0 weight row · one token's Q8_0 activations; the width is chosen at JIT time.</summary>
    internal interface IQuantRowDot
    {
        /// <summary>Dot of a row of <paramref name="cols"/> elements with Q8_0 activations.</summary>
        static abstract float Dot(byte* row, sbyte* xq, float* xs, int cols);
        /// <summary>The scalar reference of <see cref="Dot"/>.</summary>
        static abstract float DotScalar(byte* row, sbyte* xq, float* xs, int cols);
    }

    internal readonly struct Q4_0Dot : IQuantRowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, int cols) =>
            Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? KQuantV512.DotQ4_0(row, xq, xs, cols / 32)
            : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? KQuantV256.DotQ4_0(row, xq, xs, cols / 32)
            : Int8V128.IsSupported ? KQuantV128.DotQ4_0(row, xq, xs, cols / 32)
            : DotQ4_0Scalar(row, xq, xs, cols / 32);
        public static float DotScalar(byte* row, sbyte* xq, float* xs, int cols) => DotQ4_0Scalar(row, xq, xs, cols / 32);
    }

    /// <summary>
    /// Q4_0 output rows [r0, r1) for all tokens: the packed GEMM (<c>MatMul.KQuants.Gemm.cs</c>) for n ≥
    /// <see cref="GemmMinTokens"/> where the width has one, else each row read once and every token's dot taken while
    /// it is in L1.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
    private static void RunQ4_0(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
    {
        if (n >= GemmMinTokens && KQuantGemm(w, xq, xs, y, n, r0, r1)) return;
        int cols = w.Cols, rows = w.Rows, blocks = cols / Q8_0.BlockSize;
        for (int r = r0; r < r1; r++)
            for (int t = 0; t < n; t++)
                y[(long)t * rows + r] = Q4_0Dot.Dot(w.Row(r), xq + (long)t * cols, xs + (long)t * blocks, cols);
    }

    /// <summary>
    /// One K-quant weight row · the Q8_K activations of <c>TN.N</c> tokens (<c>y[t·stride]</c> for token t), per type;
    /// the width is chosen at JIT time. Every token's result is the same for any <c>TN</c>.
    /// </summary>
    private interface IKQuantRowDot
    {
        /// <summary>Most tokens one <see cref="Dot{TN}"/> call takes on this CPU (8 or 4).</summary>
        static abstract int MaxTokens { get; }
        static abstract void Dot<TN>(byte* row, Q8K x, int cols, float* y, long stride) where TN : struct, ITokenCount;
    }

    /// <summary>Tokens a K-quant row kernel takes per pass: 8 on 512 bits (32 vector registers), else 4.</summary>
    private static int KQuantRowTokens => Vector512.IsHardwareAccelerated && Avx512BW.IsSupported ? 8 : 4;

    /// <summary>Q4_K (<typeparamref name="THighBit"/> = <see cref="FlagFalse"/>) and Q5_K (<see cref="FlagTrue"/>: a fifth bit from <c>qh</c>) share one kernel.</summary>
    private readonly struct Q45_KDot<THighBit> : IKQuantRowDot where THighBit : struct, IFlag
    {
        public static int MaxTokens => KQuantRowTokens;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot<TN>(byte* row, Q8K x, int cols, float* y, long stride) where TN : struct, ITokenCount
        {
            if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported) KQuantV512.DotQ45_K<TN, THighBit>(row, x, cols, y, stride);
            else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported) KQuantV256.DotQ45_K<TN, THighBit>(row, x, cols, y, stride);
            else
                for (int t = 0; t < TN.N; t++)
                    y[t * stride] = Int8V128.IsSupported ? KQuantV128.DotQ45_K(row, x.Token(t, cols), cols / QK, THighBit.Value)
                        : THighBit.Value ? DotQ5_KScalar(row, x.Token(t, cols), cols) : DotQ4_KScalar(row, x.Token(t, cols), cols);
        }
    }

    private readonly struct Q6_KDot : IKQuantRowDot
    {
        public static int MaxTokens => KQuantRowTokens;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dot<TN>(byte* row, Q8K x, int cols, float* y, long stride) where TN : struct, ITokenCount
        {
            if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported) KQuantV512.DotQ6_K<TN>(row, x, cols, y, stride);
            else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported) KQuantV256.DotQ6_K<TN>(row, x, cols, y, stride);
            else
                for (int t = 0; t < TN.N; t++)
                    y[t * stride] = Int8V128.IsSupported ? KQuantV128.DotQ6_K(row, x.Token(t, cols), cols / QK) : DotQ6_KScalar(row, x.Token(t, cols), cols);
        }
    }

    /// <summary>A JIT-time boolean type parameter.</summary>
    internal interface IFlag { static abstract bool Value { get; } }
    internal readonly struct FlagFalse : IFlag { public static bool Value => false; }
    internal readonly struct FlagTrue : IFlag { public static bool Value => true; }

    /// <summary>
    /// K-quant output rows [r0, r1) for all n tokens (decode, batches, prefill): tokens in groups of up to
    /// <see cref="IKQuantRowDot.MaxTokens"/> (outer
    /// loop — a group's activations stay in L1 while the rows stream), each row unpacked once per group.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
    private static void RunKQuant<TDot>(in WeightMatrix w, Q8K x, float* y, int n, int r0, int r1) where TDot : struct, IKQuantRowDot
    {
        if (TryKQuantGemmV128<TDot>(w, x, y, n, r0, r1)) return;
        int cols = w.Cols, rows = w.Rows, group = TDot.MaxTokens;
        for (int t = 0; t < n; t += group)
        {
            Q8K xt = x.Token(t, cols);
            float* yt = y + (long)t * rows;
            switch (Math.Min(group, n - t))
            {
                case 8: for (int r = r0; r < r1; r++) TDot.Dot<Eight>(w.Row(r), xt, cols, yt + r, rows); break;
                case 7: for (int r = r0; r < r1; r++) TDot.Dot<Seven>(w.Row(r), xt, cols, yt + r, rows); break;
                case 6: for (int r = r0; r < r1; r++) TDot.Dot<Six>(w.Row(r), xt, cols, yt + r, rows); break;
                case 5: for (int r = r0; r < r1; r++) TDot.Dot<Five>(w.Row(r), xt, cols, yt + r, rows); break;
                case 4: for (int r = r0; r < r1; r++) TDot.Dot<Four>(w.Row(r), xt, cols, yt + r, rows); break;
                case 3: for (int r = r0; r < r1; r++) TDot.Dot<Three>(w.Row(r), xt, cols, yt + r, rows); break;
                case 2: for (int r = r0; r < r1; r++) TDot.Dot<Two>(w.Row(r), xt, cols, yt + r, rows); break;
                default: for (int r = r0; r < r1; r++) TDot.Dot<One>(w.Row(r), xt, cols, yt + r, rows); break;
            }
        }
    }

    /// <summary>
    /// Scalar reference of the whole Linear for every int8-activation type: Q8_0 and Q4_0 on Q8_0 activations
    /// (<see cref="QuantizeScalar"/>), Q4_K/Q5_K/Q6_K on Q8_K activations (<see cref="QuantizeQ8KScalar"/>), then the
    /// scalar row dots.
    /// </summary>
    internal static void LinearQuantScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n)
    {
        CheckShapes(w, x, y, n);
        int blocks = w.Cols / Q8_0.BlockSize;
        var q = new sbyte[Math.Max(1, n * w.Cols)];
        var s = new float[Math.Max(1, n * blocks)];
        var bsums = new short[Math.Max(1, n * w.Cols / 16)];
        bool k = UsesQ8KActivations(w.Type);
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        fixed (float* ps = s)
        fixed (short* pb = bsums)
        {
            if (k) QuantizeQ8KScalar(px, n * w.Cols / QK, pq, ps, pb);
            else QuantizeScalar(px, n * blocks, pq, ps);
            var xk = new Q8K(pq, ps, pb);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < w.Rows; r++)
                {
                    byte* row = w.Row(r);
                    sbyte* xq = pq + (long)t * w.Cols;
                    float* xs = ps + (long)t * blocks;
                    y[t * w.Rows + r] = w.Type switch
                    {
                        WeightType.Q4_0 => Q4_0Dot.DotScalar(row, xq, xs, w.Cols),
                        WeightType.Q4_K => DotQ4_KScalar(row, xk.Token(t, w.Cols), w.Cols),
                        WeightType.Q5_K => DotQ5_KScalar(row, xk.Token(t, w.Cols), w.Cols),
                        WeightType.Q6_K => DotQ6_KScalar(row, xk.Token(t, w.Cols), w.Cols),
                        WeightType.Q8_0 => DotQ8Scalar(row, xq, xs, blocks),
                        _ => throw new ArgumentOutOfRangeException(nameof(w)),
                    };
                }
        }
    }
}
