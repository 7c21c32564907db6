using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// The int8 kernels on 128 bits (Q8_0 here, the 4/5/6-bit types in <c>MatMul.KQuants.V128.cs</c>): ARM64 AdvSimd
    /// with SDOT (<c>Dp</c>) where present, x86 SSSE3 otherwise. One primitive, <see cref="DotI8"/>, gives the same
    /// four exact int32 lanes on every instruction set — lane i = Σ of the products of bytes 4i … 4i+3 (SDOT's
    /// definition) — so the float results of this path are identical on ARM64 with or without SDOT and on x86
    /// (with FMA): the x86 Vector128 test pass checks the numbers an ARM64 machine computes.
    /// </summary>
    internal static class Int8V128
    {
        /// <summary>The 128-bit int8 kernels run here (JIT-time constant); otherwise the int8 types take the scalar path.</summary>
        public static bool IsSupported => Vector128.IsHardwareAccelerated && (AdvSimd.Arm64.IsSupported || Ssse3.IsSupported);

        /// <summary>
        /// <c>acc + (lane i: Σ_{j=4i}^{4i+3} w[j]·x[j])</c>, exact. <paramref name="x"/> must lie in [−127, 127] (the
        /// activations do); <paramref name="w"/> may be any int8.
        /// ARM64 + Dp: one <c>sdot</c>. ARM64: <c>smull</c>, <c>smull2</c> (int16 products, |p| ≤ 128·127), two
        /// <c>saddlp</c> (pair sums to int32) and one <c>addp</c> (adjacent pairs → 4-sums). x86: the sign trick —
        /// <c>pmaddubsw(|w|, sign(x, w))</c> (pair sums ≤ 2·128·127 &lt; 2¹⁵, no saturation) then <c>pmaddwd</c> by 1.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> DotI8(Vector128<int> acc, Vector128<sbyte> w, Vector128<sbyte> x)
        {
            if (Dp.IsSupported) return Dp.DotProduct(acc, w, x);
            if (AdvSimd.Arm64.IsSupported)
            {
                Vector128<short> lo = AdvSimd.MultiplyWideningLower(w.GetLower(), x.GetLower());
                Vector128<short> hi = AdvSimd.MultiplyWideningUpper(w, x);
                return acc + AdvSimd.Arm64.AddPairwise(AdvSimd.AddPairwiseWidening(lo), AdvSimd.AddPairwiseWidening(hi));
            }
            if (Ssse3.IsSupported)
                return acc + Sse2.MultiplyAddAdjacent(Ssse3.MultiplyAddAdjacent(Ssse3.Abs(w), Ssse3.Sign(x, w)), Vector128.Create((short)1));
            throw new PlatformNotSupportedException(); // IsSupported is false: callers take the scalar path
        }

        /// <summary><c>acc + a·b</c> lane-wise in int32 (wrapping; callers keep it exact): ARM64 one <c>mla</c>, x86 <c>pmulld</c> + <c>paddd</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> MultiplyAdd(Vector128<int> acc, Vector128<int> a, Vector128<int> b) =>
            AdvSimd.IsSupported ? AdvSimd.MultiplyAdd(acc, a, b) : acc + a * b;

        /// <summary><c>[a0 + a1, a2 + a3, b0 + b1, b2 + b3]</c>: ARM64 <c>addp</c>, x86 <c>phaddd</c> (exact int32).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> AddPairs(Vector128<int> a, Vector128<int> b) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.AddPairwise(a, b) : Ssse3.HorizontalAdd(a, b);

        /// <summary><c>[a0, b0, a1, b1]</c>: ARM64 <c>zip1 .4s</c>, x86 <c>punpckldq</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> ZipLow(Vector128<int> a, Vector128<int> b) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.ZipLow(a, b) : Sse2.UnpackLow(a, b);

        /// <summary><c>[a2, b2, a3, b3]</c>: ARM64 <c>zip2 .4s</c>, x86 <c>punpckhdq</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> ZipHigh(Vector128<int> a, Vector128<int> b) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.ZipHigh(a, b) : Sse2.UnpackHigh(a, b);

        /// <summary><c>[a0, b0]</c>: ARM64 <c>zip1 .2d</c>, x86 <c>punpcklqdq</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<long> ZipLow(Vector128<long> a, Vector128<long> b) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.ZipLow(a, b) : Sse2.UnpackLow(a, b);

        /// <summary><c>[a1, b1]</c>: ARM64 <c>zip2 .2d</c>, x86 <c>punpckhqdq</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<long> ZipHigh(Vector128<long> a, Vector128<long> b) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.ZipHigh(a, b) : Sse2.UnpackHigh(a, b);

        /// <summary>
        /// The 4 × 4 int32 transpose behind the GEMMs' 4-byte interleave: writes <c>[a0 b0 c0 d0]</c>, <c>[a1 b1 c1 d1]</c>,
        /// <c>[a2 …]</c>, <c>[a3 …]</c> to <paramref name="dst"/> (zip1/zip2 on .4s then .2d; x86 punpck[lh]dq/qdq).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Transpose4(Vector128<int> a, Vector128<int> b, Vector128<int> c, Vector128<int> d, int* dst)
        {
            Vector128<long> ab0 = ZipLow(a, b).AsInt64(), ab1 = ZipHigh(a, b).AsInt64();   // a0 b0 a1 b1 | a2 b2 a3 b3
            Vector128<long> cd0 = ZipLow(c, d).AsInt64(), cd1 = ZipHigh(c, d).AsInt64();
            ZipLow(ab0, cd0).AsInt32().Store(dst);         // a0 b0 c0 d0
            ZipHigh(ab0, cd0).AsInt32().Store(dst + 4);    // a1 b1 c1 d1
            ZipLow(ab1, cd1).AsInt32().Store(dst + 8);
            ZipHigh(ab1, cd1).AsInt32().Store(dst + 12);
        }

        /// <summary>
        /// The fp16 scales of 4 consecutive blocks (<paramref name="stride"/> bytes apart, scale first) as float32, the
        /// same values as the scalar <c>BlockScale(block)</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> BlockScales(byte* block, int stride) =>
            F16Row.ToSingle(Vector128.Create(*(ushort*)block, *(ushort*)(block + stride), *(ushort*)(block + 2 * stride), *(ushort*)(block + 3 * stride)).AsInt32());

        /// <summary>
        /// <see cref="BlockScales"/> times 4 activation scales: the same float32 products as the scalar
        /// <c>BlockScale(block) * xs[b]</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> ScaleProducts(byte* block, int stride, float* xs) => BlockScales(block, stride) * Vector128.Load(xs);
    }

    /// <summary>
    /// Q8_0 and Q4_0 weights on 128 bits (<see cref="Int8V128"/>), decode and a packed GEMM with the same numerics.
    /// <para><b>Reduction order.</b> Blocks go in groups of 4: the 4 blocks' exact int32 sums become the 4 lanes of one
    /// vector, which is converted (<c>scvtf</c>) and FMA'd with the 4 blocks' scale products <c>dw·dx</c> into one
    /// 4-lane accumulator (lane j: the blocks ≡ j mod 4, in order); a last partial group has integer sum 0 and scale
    /// product 0 in its missing lanes; the result is <see cref="Vector128.Sum{T}"/> of the accumulator. Per 32 weights
    /// that is ¼ of a convert, an FMA and a scale multiply — the 4-lane float work is shared by 4 blocks.</para>
    /// <para><b>Decode</b> (<see cref="Dot"/>) reads the blocks in the file layout: per block two <see cref="Int8V128.DotI8"/>
    /// give 4 lanes, and two levels of pairwise adds (<c>addp</c> / <c>phaddd</c>) turn 4 blocks' lanes into the
    /// 4 block sums. <b>The GEMM</b> (n ≥ 2, <see cref="Gemm"/>) packs each group of <see cref="TileRows"/> rows once
    /// with the 4 blocks of a group <i>interleaved</i> by 4 bytes (and the activations likewise, once per call): then
    /// lane j of an SDOT is block j's, 8 SDOTs into one accumulator give the 4 block sums directly, and the register
    /// tile (4 rows × 2 tokens) spends per row, token and 4 blocks 8 <c>sdot</c> + <c>scvtf</c> + <c>fmla</c> +
    /// <c>fmul</c>. The integer sums are exact either way, and the float operations are the same, so every token's
    /// result is bit-identical alone and in any batch.</para>
    /// </summary>
    private static class Q8V128
    {
        /// <summary>Same quantizer as <see cref="QuantizeScalar"/> (bit for bit): max |x| of 8 vectors, round to even, narrow.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += Q8_0.BlockSize, q += Q8_0.BlockSize)
            {
                Vector128<float> v0 = Vector128.Load(x), v1 = Vector128.Load(x + 4), v2 = Vector128.Load(x + 8), v3 = Vector128.Load(x + 12);
                Vector128<float> v4 = Vector128.Load(x + 16), v5 = Vector128.Load(x + 20), v6 = Vector128.Load(x + 24), v7 = Vector128.Load(x + 28);
                Vector128<float> m = Vector128.Max(
                    Vector128.Max(Vector128.Max(Vector128.Abs(v0), Vector128.Abs(v1)), Vector128.Max(Vector128.Abs(v2), Vector128.Abs(v3))),
                    Vector128.Max(Vector128.Max(Vector128.Abs(v4), Vector128.Abs(v5)), Vector128.Max(Vector128.Abs(v6), Vector128.Abs(v7))));
                float amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
                float scale = amax / 127f;
                var inv = Vector128.Create(InverseScale(scale));
                Vector128<short> s0 = Vector128.Narrow(Round(v0, inv), Round(v1, inv)), s1 = Vector128.Narrow(Round(v2, inv), Round(v3, inv));
                Vector128<short> s2 = Vector128.Narrow(Round(v4, inv), Round(v5, inv)), s3 = Vector128.Narrow(Round(v6, inv), Round(v7, inv));
                Vector128.Narrow(s0, s1).Store(q);
                Vector128.Narrow(s2, s3).Store(q + 16);
                scales[b] = scale;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<int> Round(Vector128<float> v, Vector128<float> inv) => Vector128.ConvertToInt32(Vector128.Round(v * inv));

        /// <summary>Output rows [r0, r1) for all tokens: <see cref="Dot"/> per row for one token, else the packed GEMM.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
        public static void Range<TBlock>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
            where TBlock : struct, IInt8Block
        {
            if (n >= 2) { Gemm<TBlock>(w, xq, xs, y, n, r0, r1); return; }
            int blocks = w.Cols / 32;
            for (int r = r0; r < r1; r++)
                y[r] = Dot<TBlock>(w.Row(r), xq, xs, blocks);
        }

        /// <summary>One row · one token in the reduction order above, from the file layout.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float Dot<TBlock>(byte* row, sbyte* xq, float* xs, int blocks) where TBlock : struct, IInt8Block
        {
            int bb = TBlock.Bytes;
            var acc = Vector128<float>.Zero;
            int b = 0;
            for (; b + 4 <= blocks; b += 4)
            {
                byte* g = row + b * bb;
                sbyte* x = xq + b * 32;
                Vector128<int> sums = Int8V128.AddPairs(
                    Int8V128.AddPairs(BlockLanes<TBlock>(g, x), BlockLanes<TBlock>(g + bb, x + 32)),
                    Int8V128.AddPairs(BlockLanes<TBlock>(g + 2 * bb, x + 64), BlockLanes<TBlock>(g + 3 * bb, x + 96)));
                acc = Ops128.Fma(Vector128.ConvertToSingle(sums), Int8V128.ScaleProducts(g, bb, xs + b), acc);
            }
            if (b < blocks)
            {
                // The partial last group: missing lanes are 0 · 0, as the GEMM's zero padding.
                int* sums = stackalloc int[4];
                float* scales = stackalloc float[4];
                for (int j = 0; j < 4; j++)
                {
                    byte* block = row + (b + j) * bb;
                    sums[j] = b + j < blocks ? Vector128.Sum(BlockLanes<TBlock>(block, xq + (b + j) * 32)) : 0;
                    scales[j] = b + j < blocks ? BlockScale(block) * xs[b + j] : 0f;
                }
                acc = Ops128.Fma(Vector128.ConvertToSingle(Vector128.Load(sums)), Vector128.Load(scales), acc);
            }
            return Vector128.Sum(acc);
        }

        /// <summary>One block's 4 SDOT lanes (exact int32; their sum is the block's integer dot product).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<int> BlockLanes<TBlock>(byte* block, sbyte* x) where TBlock : struct, IInt8Block
        {
            TBlock.Load(block, out Vector128<sbyte> lo, out Vector128<sbyte> hi);
            return Int8V128.DotI8(Int8V128.DotI8(Vector128<int>.Zero, lo, Vector128.Load(x)), hi, Vector128.Load(x + 16));
        }

        /// <summary>Rows of the register tile and of one packed group.</summary>
        private const int TileRows = 4;

        // One packed group of 4 blocks: TileRows × 128 interleaved weight bytes, then TileRows × 4 float block scales.
        private const int GroupBytes = TileRows * (128 + 16);

        // One token's packed activations per group: 128 interleaved bytes; the token's 4-float scale groups follow all its bytes.
        private const int XGroupBytes = 128 + 16;

        /// <summary>
        /// The packed GEMM: activations interleaved once per call (<see cref="PackActivations"/>), then per group of
        /// <see cref="TileRows"/> rows the weights once (<see cref="PackRows{TBlock}"/>) and every token pair over them.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Gemm<TBlock>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
            where TBlock : struct, IInt8Block
        {
            int cols = w.Cols, blocks = cols / 32, groups = (blocks + 3) / 4, rows = w.Rows;
            long tokenBytes = (long)groups * XGroupBytes;
            byte* xp = Scratch.Get(ref t_packedX, n * tokenBytes);
            for (int t = 0; t < n; t++)
                PackActivations(xq + (long)t * cols, xs + (long)t * blocks, blocks, xp + t * tokenBytes);
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, groups) * GroupBytes / sizeof(float));
            for (int g = r0; g < r1; g += TileRows)
            {
                int count = Math.Min(TileRows, r1 - g);
                PackRows<TBlock>(w, g, count, blocks, panel);
                int t = 0;
                for (; t + 2 <= n; t += 2)
                    Tile<Two>(panel, groups, xp + t * tokenBytes, tokenBytes, y + (long)t * rows + g, rows, count);
                if (t < n)
                    Tile<One>(panel, groups, xp + t * tokenBytes, tokenBytes, y + (long)t * rows + g, rows, count);
            }
        }

        [ThreadStatic] private static byte[]? t_packedX;

        /// <summary>
        /// One token's activations in the GEMM layout: per group of 4 blocks 128 bytes where bytes 16k + 4j … 16k + 4j + 3
        /// are bytes 4k … 4k + 3 of block j (<see cref="Interleave"/>), then the token's block scales, 4 per group;
        /// a last partial group padded with zero bytes and zero scales.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackActivations(sbyte* xq, float* xs, int blocks, byte* dst)
        {
            int groups = (blocks + 3) / 4;
            float* scales = (float*)(dst + groups * 128L);
            for (int g = 0; g < groups; g++)
            {
                Vector128<sbyte> l0 = default, l1 = default, l2 = default, l3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
                int m = Math.Min(4, blocks - 4 * g);
                sbyte* x = xq + g * 128L;
                l0 = Vector128.Load(x); h0 = Vector128.Load(x + 16);
                if (m > 1) { l1 = Vector128.Load(x + 32); h1 = Vector128.Load(x + 48); }
                if (m > 2) { l2 = Vector128.Load(x + 64); h2 = Vector128.Load(x + 80); }
                if (m > 3) { l3 = Vector128.Load(x + 96); h3 = Vector128.Load(x + 112); }
                Interleave(l0, l1, l2, l3, h0, h1, h2, h3, (sbyte*)dst + g * 128L);
                for (int j = 0; j < 4; j++) scales[4 * g + j] = j < m ? xs[4 * g + j] : 0f;
            }
        }

        /// <summary>
        /// Rows [g, g + count) into a panel: per group the rows' interleaved weight bytes (as <see cref="PackActivations"/>),
        /// then their 4 block scales each (fp16 → float32, exact); rows past count and blocks past the end are zeros.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackRows<TBlock>(in WeightMatrix w, int g, int count, int blocks, byte* panel) where TBlock : struct, IInt8Block
        {
            int bb = TBlock.Bytes, groups = (blocks + 3) / 4;
            for (int i = 0; i < TileRows; i++)
            {
                byte* row = i < count ? w.Row(g + i) : null;
                for (int k = 0; k < groups; k++)
                {
                    byte* dst = panel + (long)k * GroupBytes;
                    float* scales = (float*)(dst + TileRows * 128) + 4 * i;
                    Vector128<sbyte> l0 = default, l1 = default, l2 = default, l3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
                    int m = row is null ? 0 : Math.Min(4, blocks - 4 * k);
                    byte* b0 = row + (long)4 * k * bb;
                    if (m == 4)
                        Int8V128.BlockScales(b0, bb).Store(scales);
                    else
                        for (int j = 0; j < 4; j++) scales[j] = j < m ? BlockScale(b0 + j * bb) : 0f;
                    if (m > 0) TBlock.Load(b0, out l0, out h0);
                    if (m > 1) TBlock.Load(b0 + bb, out l1, out h1);
                    if (m > 2) TBlock.Load(b0 + 2 * bb, out l2, out h2);
                    if (m > 3) TBlock.Load(b0 + 3 * bb, out l3, out h3);
                    Interleave(l0, l1, l2, l3, h0, h1, h2, h3, (sbyte*)dst + 128 * i);
                }
            }
        }

        /// <summary>
        /// 4 blocks (elements 0–15 in l, 16–31 in h) → 8 vectors, vector k holding 4-byte chunk k of each block in lane j
        /// = block j: two 4 × 4 transposes of int32 (<c>zip1/zip2</c> on .4s then .2d; x86 <c>punpck[lh]dq/qdq</c>).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Interleave(Vector128<sbyte> l0, Vector128<sbyte> l1, Vector128<sbyte> l2, Vector128<sbyte> l3,
                                       Vector128<sbyte> h0, Vector128<sbyte> h1, Vector128<sbyte> h2, Vector128<sbyte> h3, sbyte* dst)
        {
            Int8V128.Transpose4(l0.AsInt32(), l1.AsInt32(), l2.AsInt32(), l3.AsInt32(), (int*)dst);
            Int8V128.Transpose4(h0.AsInt32(), h1.AsInt32(), h2.AsInt32(), h3.AsInt32(), (int*)(dst + 64));
        }


        /// <summary>
        /// <see cref="TileRows"/> packed rows × <typeparamref name="TN"/> (1 or 2) tokens: per group 8 SDOTs per (row, token)
        /// into an int32 accumulator (lane j = block j's exact sum), then convert, scale products, FMA; 8 float + 8 int
        /// accumulators, 2 activation vectors and a weight vector fit AArch64's 32 registers.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TN>(byte* panel, int groups, byte* x, long tokenBytes, float* y, int rows, int count)
            where TN : struct, ITokenCount
        {
            int n = TN.N;
            sbyte* x0 = (sbyte*)x, x1 = (sbyte*)(x + tokenBytes);
            float* xs0 = (float*)(x + groups * 128L), xs1 = (float*)(x + tokenBytes + groups * 128L);
            Vector128<float> a00 = default, a10 = default, a20 = default, a30 = default, a01 = default, a11 = default, a21 = default, a31 = default;
            byte* p = panel;
            for (int g = 0; g < groups; g++, p += GroupBytes, x0 += 128, x1 += 128)
            {
                Vector128<int> i00 = default, i10 = default, i20 = default, i30 = default, i01 = default, i11 = default, i21 = default, i31 = default;
                for (int k = 0; k < 128; k += 16)
                {
                    Vector128<sbyte> v0 = Vector128.Load(x0 + k), v1 = n > 1 ? Vector128.Load(x1 + k) : default;
                    Vector128<sbyte> w0 = Vector128.Load((sbyte*)p + k);
                    i00 = Int8V128.DotI8(i00, w0, v0);
                    if (n > 1) i01 = Int8V128.DotI8(i01, w0, v1);
                    Vector128<sbyte> w1 = Vector128.Load((sbyte*)p + 128 + k);
                    i10 = Int8V128.DotI8(i10, w1, v0);
                    if (n > 1) i11 = Int8V128.DotI8(i11, w1, v1);
                    Vector128<sbyte> w2 = Vector128.Load((sbyte*)p + 256 + k);
                    i20 = Int8V128.DotI8(i20, w2, v0);
                    if (n > 1) i21 = Int8V128.DotI8(i21, w2, v1);
                    Vector128<sbyte> w3 = Vector128.Load((sbyte*)p + 384 + k);
                    i30 = Int8V128.DotI8(i30, w3, v0);
                    if (n > 1) i31 = Int8V128.DotI8(i31, w3, v1);
                }
                float* ws = (float*)(p + TileRows * 128);
                Vector128<float> s0 = Vector128.Load(xs0 + 4 * g), d0 = Vector128.Load(ws), d1 = Vector128.Load(ws + 4), d2 = Vector128.Load(ws + 8), d3 = Vector128.Load(ws + 12);
                a00 = Ops128.Fma(Vector128.ConvertToSingle(i00), d0 * s0, a00);
                a10 = Ops128.Fma(Vector128.ConvertToSingle(i10), d1 * s0, a10);
                a20 = Ops128.Fma(Vector128.ConvertToSingle(i20), d2 * s0, a20);
                a30 = Ops128.Fma(Vector128.ConvertToSingle(i30), d3 * s0, a30);
                if (n > 1)
                {
                    Vector128<float> s1 = Vector128.Load(xs1 + 4 * g);
                    a01 = Ops128.Fma(Vector128.ConvertToSingle(i01), d0 * s1, a01);
                    a11 = Ops128.Fma(Vector128.ConvertToSingle(i11), d1 * s1, a11);
                    a21 = Ops128.Fma(Vector128.ConvertToSingle(i21), d2 * s1, a21);
                    a31 = Ops128.Fma(Vector128.ConvertToSingle(i31), d3 * s1, a31);
                }
            }
            // Rows past count are the panel's zero padding: computed, not stored.
            float* sum = stackalloc float[8];
            sum[0] = Vector128.Sum(a00); sum[1] = Vector128.Sum(a10); sum[2] = Vector128.Sum(a20); sum[3] = Vector128.Sum(a30);
            if (n > 1) { sum[4] = Vector128.Sum(a01); sum[5] = Vector128.Sum(a11); sum[6] = Vector128.Sum(a21); sum[7] = Vector128.Sum(a31); }
            for (int i = 0; i < count; i++)
            {
                y[i] = sum[i];
                if (n > 1) y[rows + i] = sum[4 + i];
            }
        }
    }

    /// <summary>A block format whose 32 weights are int8 after unpacking, with the fp16 scale first: Q8_0, Q4_0.</summary>
    private interface IInt8Block
    {
        /// <summary>Bytes per block of 32 weights.</summary>
        static abstract int Bytes { get; }
        /// <summary>Weights 0–15 and 16–31 of the block as int8.</summary>
        static abstract void Load(byte* block, out Vector128<sbyte> lo, out Vector128<sbyte> hi);
    }

    /// <summary>Q8_0: fp16 scale, 32 int8 weights.</summary>
    private readonly struct Q8_0Block : IInt8Block
    {
        public static int Bytes => Q8_0.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load(byte* block, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
        {
            lo = Vector128.Load((sbyte*)block + 2);
            hi = Vector128.Load((sbyte*)block + 18);
        }
    }

    /// <summary>Q4_0: fp16 scale, 16 bytes; byte j holds weight j (low nibble) and j + 16 (high nibble), q − 8 ∈ [−8, 7].</summary>
    private readonly struct Q4_0Block : IInt8Block
    {
        public static int Bytes => Dequantizer.Q4_0BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Load(byte* block, out Vector128<sbyte> lo, out Vector128<sbyte> hi)
        {
            Vector128<byte> raw = Vector128.Load(block + 2), eight = Vector128.Create((byte)8);
            lo = ((raw & Vector128.Create((byte)0x0F)) - eight).AsSByte();
            hi = (Vector128.ShiftRightLogical(raw, 4) - eight).AsSByte();
        }
    }
}
