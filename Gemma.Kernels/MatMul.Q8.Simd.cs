using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// A token count known when the kernel is compiled: the small-batch kernels are generic over it, so each n gets
    /// its own code with exactly n accumulators live (the JIT specializes struct type arguments and folds
    /// <c>TN.N</c> tests). Batches of up to <see cref="SmallBatchMax"/> tokens use them.
    /// </summary>
    private interface ITokenCount { static abstract int N { get; } }
    private struct One : ITokenCount { public static int N => 1; }
    private struct Two : ITokenCount { public static int N => 2; }
    private struct Three : ITokenCount { public static int N => 3; }
    private struct Four : ITokenCount { public static int N => 4; }
    private struct Five : ITokenCount { public static int N => 5; }
    private struct Six : ITokenCount { public static int N => 6; }
    private struct Seven : ITokenCount { public static int N => 7; }
    private struct Eight : ITokenCount { public static int N => 8; }

    /// <summary>Most tokens the one-pass small-batch kernels take; larger batches use the packed GEMM.</summary>
    internal const int SmallBatchMax = 8;

    /// <summary>
    /// Q8_0 on 512 bits (AVX-512BW): two 32-byte blocks per vector. u8×s8 products via the sign trick — vpmaddubsw
    /// wants unsigned × signed, so use |w| (≤ 128 fits a byte, exact even for −128) and x with w's sign
    /// (x ∈ [−127, 127], so negation cannot overflow); pair sums ≤ 2·128·127 &lt; 2¹⁵, so vpmaddubsw never saturates.
    /// vpmaddwd with ones then gives 16 int32 lanes (8 per block), converted exactly to float and FMA'd with the
    /// block scale products.
    /// </summary>
    private static class Q8V512
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += Q8_0.BlockSize, q += Q8_0.BlockSize)
            {
                Vector512<float> v0 = Vector512.Load(x), v1 = Vector512.Load(x + 16);
                Vector512<float> m = Vector512.Max(Vector512.Abs(v0), Vector512.Abs(v1));
                Vector256<float> m8 = Vector256.Max(m.GetLower(), m.GetUpper());
                Vector128<float> m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
                float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
                float scale = amax / 127f;
                var inv = Vector512.Create(InverseScale(scale));
                Vector512<int> q0 = Vector512.ConvertToInt32(Vector512.Round(v0 * inv));
                Vector512<int> q1 = Vector512.ConvertToInt32(Vector512.Round(v1 * inv));
                Vector512<short> s = Vector512.Narrow(q0, q1);
                Vector512.Narrow(s, s).GetLower().Store(q);
                scales[b] = scale;
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
        public static void Range(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
        {
            // Decode (n = 1) and small batches (a server decoding up to 8 streams): one row after another, a single
            // sequential stream for the prefetchers, each weight block loaded once for all n tokens. Bigger batches
            // (prefill) amortize packing the weights for a register tile.
            switch (n)
            {
                case 1: Rows<One>(w, xq, xs, y, r0, r1); break;
                case 2: Rows<Two>(w, xq, xs, y, r0, r1); break;
                case 3: Rows<Three>(w, xq, xs, y, r0, r1); break;
                case 4: Rows<Four>(w, xq, xs, y, r0, r1); break;
                case 5: Rows<Five>(w, xq, xs, y, r0, r1); break;
                case 6: Rows<Six>(w, xq, xs, y, r0, r1); break;
                case 7: Rows<Seven>(w, xq, xs, y, r0, r1); break;
                case 8: Rows<Eight>(w, xq, xs, y, r0, r1); break;
                default: Gemm(w, xq, xs, y, n, r0, r1); break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Rows<TN>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int r0, int r1) where TN : struct, ITokenCount
        {
            int cols = w.Cols, blocks = cols / Q8_0.BlockSize, rows = w.Rows;
            for (int r = r0; r < r1; r++)
                Dot<TN>(w.Row(r), xq, xs, blocks, y + r, rows);
        }

        // Bytes of one prepared block pair of one row in a packed panel: |w| (64), w < 0 mask (64), scales (16 floats).
        private const int PairBytes = 192;

        /// <summary>
        /// Packed int8 GEMM: each group of <see cref="GroupRows"/> rows is prepared once (<see cref="PackGroup"/>: |w|, sign mask and the two
        /// fp16 block scales as a float vector per block pair — the work the old 4 × 2 tile redid for every token pair)
        /// and then every token pair passes over it; the products and their accumulation order are those of
        /// <see cref="Dot"/>, so results equal decode bit for bit. Rows past the end of the group are zero padding.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Gemm(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
        {
            int cols = w.Cols, blocks = cols / Q8_0.BlockSize, rows = w.Rows, pairs = blocks / 2;
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, pairs) * GroupRows * PairBytes / sizeof(float));
            for (int g = r0; g < r1; g += GroupRows)
            {
                int count = Math.Min(GroupRows, r1 - g);
                PackGroup(w, g, count, pairs, panel);
                int t = 0;
                for (; t + 2 <= n; t += 2)
                    PackedTile8x2(panel, pairs, w, g, count, xq + (long)t * cols, xs + (long)t * blocks, y + (long)t * rows, rows, cols, blocks);
                for (; t < n; t++)
                    for (int i = 0; i < count; i++)
                        y[(long)t * rows + g + i] = Dot(w.Row(g + i), xq + (long)t * cols, xs + (long)t * blocks, blocks);
            }
        }

        /// <summary>Rows of one packed group (the tile's rows): a token's per-pair work (activation load, negation, scales) is shared by 8 rows.</summary>
        private const int GroupRows = 8;

        /// <summary>Layout: pair p, row i (<see cref="GroupRows"/> rows) → |w| bytes, mask bytes, 16 float scales.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackGroup(in WeightMatrix w, int g, int count, int pairs, byte* dst)
        {
            for (int i = 0; i < GroupRows; i++)
            {
                byte* row = i < count ? w.Row(g + i) : null;
                for (int p = 0; p < pairs; p++)
                {
                    byte* d = dst + ((long)p * GroupRows + i) * PairBytes;
                    if (row is null)
                    {
                        Vector512<byte>.Zero.Store(d);
                        Vector512<byte>.Zero.Store(d + 64);
                        Vector512<byte>.Zero.Store(d + 128);
                        continue;
                    }
                    var pair = new WeightPair(row + 2 * p * Q8_0.BlockBytes);
                    pair.Abs.Store(d);
                    pair.Negative.Store((sbyte*)d + 64);
                    pair.Scale.Store((float*)(d + 128));
                }
            }
        }

        /// <summary>8 packed rows × 2 tokens: 16 accumulators; per block pair 2 activation loads (+ negations, scales) and 24 panel loads.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackedTile8x2(byte* panel, int pairs, in WeightMatrix w, int g, int count,
                                          sbyte* xq, float* xs, float* y, int rows, int cols, int blocks)
        {
            sbyte* xq1 = xq + cols;
            float* xs1 = xs + blocks;
            Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default, a40 = default, a50 = default, a60 = default, a70 = default;
            Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default, a41 = default, a51 = default, a61 = default, a71 = default;
            byte* pp = panel;
            for (int b = 0; b + 2 <= blocks; b += 2, pp += GroupRows * PairBytes)
            {
                var x0 = Vector512.Load(xq + b * 32);
                var x1 = Vector512.Load(xq1 + b * 32);
                var n0 = -x0;
                var n1 = -x1;
                var s0 = XScales(xs, b);
                var s1 = XScales(xs1, b);
                a00 = Accumulate(pp, x0, n0, s0, a00); a01 = Accumulate(pp, x1, n1, s1, a01);
                a10 = Accumulate(pp + PairBytes, x0, n0, s0, a10); a11 = Accumulate(pp + PairBytes, x1, n1, s1, a11);
                a20 = Accumulate(pp + 2 * PairBytes, x0, n0, s0, a20); a21 = Accumulate(pp + 2 * PairBytes, x1, n1, s1, a21);
                a30 = Accumulate(pp + 3 * PairBytes, x0, n0, s0, a30); a31 = Accumulate(pp + 3 * PairBytes, x1, n1, s1, a31);
                a40 = Accumulate(pp + 4 * PairBytes, x0, n0, s0, a40); a41 = Accumulate(pp + 4 * PairBytes, x1, n1, s1, a41);
                a50 = Accumulate(pp + 5 * PairBytes, x0, n0, s0, a50); a51 = Accumulate(pp + 5 * PairBytes, x1, n1, s1, a51);
                a60 = Accumulate(pp + 6 * PairBytes, x0, n0, s0, a60); a61 = Accumulate(pp + 6 * PairBytes, x1, n1, s1, a61);
                a70 = Accumulate(pp + 7 * PairBytes, x0, n0, s0, a70); a71 = Accumulate(pp + 7 * PairBytes, x1, n1, s1, a71);
            }
            // Reduce before any call (vector registers do not survive calls).
            float* sum = stackalloc float[16];
            sum[0] = Vector512.Sum(a00); sum[1] = Vector512.Sum(a10); sum[2] = Vector512.Sum(a20); sum[3] = Vector512.Sum(a30);
            sum[4] = Vector512.Sum(a40); sum[5] = Vector512.Sum(a50); sum[6] = Vector512.Sum(a60); sum[7] = Vector512.Sum(a70);
            sum[8] = Vector512.Sum(a01); sum[9] = Vector512.Sum(a11); sum[10] = Vector512.Sum(a21); sum[11] = Vector512.Sum(a31);
            sum[12] = Vector512.Sum(a41); sum[13] = Vector512.Sum(a51); sum[14] = Vector512.Sum(a61); sum[15] = Vector512.Sum(a71);
            for (int i = 0; i < count; i++)
            {
                byte* row = w.Row(g + i);
                y[g + i] = sum[i] + LastBlock(row, xq, xs, blocks);
                y[rows + g + i] = sum[8 + i] + LastBlock(row, xq1, xs1, blocks);
            }
        }

        /// <summary>One block pair and one token (as <see cref="Accumulate(Vector512{byte}, Vector512{sbyte}, Vector512{sbyte}, Vector512{float}, Vector512{float})"/>) from a packed pair.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Accumulate(byte* packed, Vector512<sbyte> xv, Vector512<sbyte> negX, Vector512<float> xScale, Vector512<float> acc)
        {
            Vector512<sbyte> sx = Vector512.ConditionalSelect(Vector512.Load((sbyte*)packed + 64), negX, xv);
            Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(Vector512.Load(packed), sx);
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1));
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), Vector512.Load((float*)(packed + 128)) * xScale, acc);
        }

        /// <summary>One weight block pair, prepared once and used for every token of a tile.</summary>
        private readonly struct WeightPair
        {
            public readonly Vector512<byte> Abs;      // |w|, 0..128 as unsigned bytes
            public readonly Vector512<sbyte> Negative; // lanes where w < 0
            public readonly Vector512<float> Scale;    // dw(b) in lanes 0-7, dw(b+1) in lanes 8-15

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public WeightPair(byte* b0)
            {
                Vector512<sbyte> wq = Vector512.Create(Vector256.Load((sbyte*)b0 + 2), Vector256.Load((sbyte*)b0 + Q8_0.BlockBytes + 2));
                Abs = Vector512.Abs(wq).AsByte();
                Negative = Vector512.LessThan(wq, Vector512<sbyte>.Zero);
                Scale = Vector512.Create(Vector256.Create(BlockScale(b0)), Vector256.Create(BlockScale(b0 + Q8_0.BlockBytes)));
            }
        }

        /// <summary>Activation scales of blocks b, b+1 as lanes 0-7 / 8-15.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> XScales(float* xs, int b) => Vector512.Create(Vector256.Create(xs[b]), Vector256.Create(xs[b + 1]));

        /// <summary>Odd last block: exact integer sum, added after the vector sum (same order in every tile).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float LastBlock(byte* row, sbyte* xq, float* xs, int blocks)
        {
            if ((blocks & 1) == 0) return 0;
            int b = blocks - 1;
            byte* block = row + b * Q8_0.BlockBytes;
            return BlockDotScalar((sbyte*)block + 2, xq + b * Q8_0.BlockSize) * (BlockScale(block) * xs[b]);
        }

        /// <summary>One row × one token: <see cref="Dot{TN}"/> for n = 1 (the GEMM's odd last token).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float Dot(byte* row, sbyte* xq, float* xs, int blocks)
        {
            float y;
            Dot<One>(row, xq, xs, blocks, &y, 0);
            return y;
        }

        /// <summary>
        /// One row × <typeparamref name="TN"/> tokens (1…8): <c>y[t · stride] = row · x[t]</c>. Each weight block is
        /// loaded and split into |w| and sign once, then dotted with every token, so n tokens cost one pass over the
        /// row (decode is bandwidth-bound: up to ~8 tokens ride along almost free). Scales are handled 16 blocks at a
        /// time: the 16 fp16 scales gathered, a vector fp16 → f32 (<see cref="F16Row.ToSingle(Vector512{int})"/>,
        /// bit-identical to the scalar one), one multiply by each token's 16 activation scales, then one vpermps per
        /// block pair picks its two products. Per token the products and their accumulation order are the same for
        /// every n and as in the packed GEMM tile (one accumulator, block pairs in order, then the odd last block), so
        /// a token's result never depends on the batch it is in. The accumulators of tokens past n are dead code
        /// (<c>TN.N</c> is a JIT-time constant).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Dot<TN>(byte* row, sbyte* xq, float* xs, int blocks, float* y, int stride) where TN : struct, ITokenCount
        {
            int n = TN.N, cols = blocks * Q8_0.BlockSize;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            int b = 0;
            // Byte offsets of 16 consecutive block scales; each gathered int32 holds the scale in its low half.
            // (.NET 10 has no 512-bit gather, so two 256-bit vpgatherdd.)
            Vector256<int> offsets = Vector256.CreateSequence(0, Q8_0.BlockBytes);
            // Lanes 0-7 select element 0, lanes 8-15 element 1; +2 per block pair.
            Vector512<int> pick0 = Vector512.Create(Vector256.Create(0), Vector256.Create(1));
            for (; b + 16 <= blocks; b += 16)
            {
                byte* group = row + b * Q8_0.BlockBytes;
                // The 16 fp16 scales by two vpgatherdd. (The scalar loads that replaced them for n ≥ 2 — 16 stores to the
                // stack and a vector load of them per group — measured bimodal by process and up to 3× slower under load;
                // docs/performance.md, "Batched decode, fourth round".) Batches are compute-bound and read the row too
                // slowly for the hardware prefetchers, so for n ≥ 2 it is prefetched into L1 BatchPrefetchBytes ahead
                // (docs/kernels.md, "Q8_0 small batches").
                if (n > 1) Prefetch.ToL1(group + BatchPrefetchBytes, 16 * Q8_0.BlockBytes); // 544 bytes: 9 lines
                Vector512<int> halves = Vector512.Create(
                    Avx2.GatherVector256((int*)group, offsets, 1),
                    Avx2.GatherVector256((int*)(group + 8 * Q8_0.BlockBytes), offsets, 1));
                Vector512<float> ws = F16Row.ToSingle(halves);
                float* s = xs + b;
                Vector512<float> s0 = ws * Vector512.Load(s), s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
                if (n > 1) s1 = ws * Vector512.Load(s + blocks);
                if (n > 2) s2 = ws * Vector512.Load(s + 2 * blocks);
                if (n > 3) s3 = ws * Vector512.Load(s + 3 * blocks);
                if (n > 4) s4 = ws * Vector512.Load(s + 4 * blocks);
                if (n > 5) s5 = ws * Vector512.Load(s + 5 * blocks);
                if (n > 6) s6 = ws * Vector512.Load(s + 6 * blocks);
                if (n > 7) s7 = ws * Vector512.Load(s + 7 * blocks);
                Vector512<int> pick = pick0;
                for (int p = 0; p < 8; p++)
                {
                    byte* b0 = group + 2 * p * Q8_0.BlockBytes;
                    Vector512<sbyte> wq = Vector512.Create(Vector256.Load((sbyte*)b0 + 2), Vector256.Load((sbyte*)b0 + Q8_0.BlockBytes + 2));
                    Vector512<sbyte> negative = Vector512.LessThan(wq, Vector512<sbyte>.Zero);
                    Vector512<byte> abs = Vector512.Abs(wq).AsByte();
                    sbyte* x = xq + (b + 2 * p) * Q8_0.BlockSize;
                    a0 = AccumulateMasked(abs, wq, Vector512.Load(x), Avx512F.PermuteVar16x32(s0, pick), a0);
                    if (n > 1) a1 = AccumulateMasked(abs, wq, Vector512.Load(x + cols), Avx512F.PermuteVar16x32(s1, pick), a1);
                    if (n > 2) a2 = AccumulateMasked(abs, wq, Vector512.Load(x + 2 * cols), Avx512F.PermuteVar16x32(s2, pick), a2);
                    if (n > 3) a3 = AccumulateMasked(abs, wq, Vector512.Load(x + 3 * cols), Avx512F.PermuteVar16x32(s3, pick), a3);
                    if (n > 4) a4 = AccumulateMasked(abs, wq, Vector512.Load(x + 4 * cols), Avx512F.PermuteVar16x32(s4, pick), a4);
                    if (n > 5) a5 = AccumulateMasked(abs, wq, Vector512.Load(x + 5 * cols), Avx512F.PermuteVar16x32(s5, pick), a5);
                    if (n > 6) a6 = AccumulateMasked(abs, wq, Vector512.Load(x + 6 * cols), Avx512F.PermuteVar16x32(s6, pick), a6);
                    if (n > 7) a7 = AccumulateMasked(abs, wq, Vector512.Load(x + 7 * cols), Avx512F.PermuteVar16x32(s7, pick), a7);
                    pick += Vector512.Create(2);
                }
            }
            for (; b + 2 <= blocks; b += 2)
            {
                var pair = new WeightPair(row + b * Q8_0.BlockBytes);
                sbyte* x = xq + b * Q8_0.BlockSize;
                a0 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x), pair.Scale * XScales(xs, b), a0);
                if (n > 1) a1 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + cols), pair.Scale * XScales(xs + blocks, b), a1);
                if (n > 2) a2 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 2 * cols), pair.Scale * XScales(xs + 2 * blocks, b), a2);
                if (n > 3) a3 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 3 * cols), pair.Scale * XScales(xs + 3 * blocks, b), a3);
                if (n > 4) a4 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 4 * cols), pair.Scale * XScales(xs + 4 * blocks, b), a4);
                if (n > 5) a5 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 5 * cols), pair.Scale * XScales(xs + 5 * blocks, b), a5);
                if (n > 6) a6 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 6 * cols), pair.Scale * XScales(xs + 6 * blocks, b), a6);
                if (n > 7) a7 = Accumulate(pair.Abs, pair.Negative, Vector512.Load(x + 7 * cols), pair.Scale * XScales(xs + 7 * blocks, b), a7);
            }
            // Reduce all accumulators before any call (vector registers do not survive calls).
            float* sum = stackalloc float[8];
            sum[0] = Vector512.Sum(a0);
            if (n > 1) sum[1] = Vector512.Sum(a1);
            if (n > 2) sum[2] = Vector512.Sum(a2);
            if (n > 3) sum[3] = Vector512.Sum(a3);
            if (n > 4) sum[4] = Vector512.Sum(a4);
            if (n > 5) sum[5] = Vector512.Sum(a5);
            if (n > 6) sum[6] = Vector512.Sum(a6);
            if (n > 7) sum[7] = Vector512.Sum(a7);
            for (int t = 0; t < n; t++)
                y[(long)t * stride] = sum[t] + LastBlock(row, xq + (long)t * cols, xs + (long)t * blocks, blocks);
        }

        /// <summary>
        /// How far ahead of the 16-block group being multiplied a batched <see cref="Dot{TN}"/> prefetches its row: four
        /// groups (4 × 544 bytes; 1088 measured about the same). A group's 544 bytes are 9 cache lines, one
        /// <c>prefetcht0</c> each. Past the row it reaches into the next one, which comes next.
        /// </summary>
        private const int BatchPrefetchBytes = 4 * 16 * Q8_0.BlockBytes;

        /// <summary>As <see cref="Accumulate(Vector512{byte}, Vector512{sbyte}, Vector512{sbyte}, Vector512{float}, Vector512{float})"/>, the sign taken from w by a compare the JIT can keep in a mask register.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> AccumulateMasked(Vector512<byte> abs, Vector512<sbyte> wq, Vector512<sbyte> xv, Vector512<float> scale, Vector512<float> acc)
        {
            Vector512<sbyte> sx = Vector512.ConditionalSelect(Vector512.LessThan(wq, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - xv, xv);
            Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(abs, sx);
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1));
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), scale, acc);
        }

        /// <summary><c>acc += (float)(Σ|w|·(±x) per 4 bytes) · scale</c> for one block pair and one token.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Accumulate(Vector512<byte> abs, Vector512<sbyte> negative, Vector512<sbyte> xv, Vector512<float> scale, Vector512<float> acc)
        {
            Vector512<sbyte> sx = Vector512.ConditionalSelect(negative, -xv, xv);
            Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(abs, sx);
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1));
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), scale, acc);
        }
    }

    /// <summary>
    /// Q8_0 on 256 bits (AVX2, AVX-VNNI when present): one block per vector; |w| and vpsignb put w's sign on x,
    /// then vpdpbusd (or vpmaddubsw + vpmaddwd, same exact int32 lanes) and an FMA with the block's scale product.
    /// </summary>
    private static class Q8V256
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += Q8_0.BlockSize, q += Q8_0.BlockSize)
            {
                Vector256<float> v0 = Vector256.Load(x), v1 = Vector256.Load(x + 8), v2 = Vector256.Load(x + 16), v3 = Vector256.Load(x + 24);
                Vector256<float> m8 = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                Vector128<float> m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
                float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
                float scale = amax / 127f;
                var inv = Vector256.Create(InverseScale(scale));
                Vector256<short> s0 = Vector256.Narrow(Vector256.ConvertToInt32(Vector256.Round(v0 * inv)), Vector256.ConvertToInt32(Vector256.Round(v1 * inv)));
                Vector256<short> s1 = Vector256.Narrow(Vector256.ConvertToInt32(Vector256.Round(v2 * inv)), Vector256.ConvertToInt32(Vector256.Round(v3 * inv)));
                Vector256.Narrow(s0, s1).Store(q);
                scales[b] = scale;
            }
        }

        /// <summary>This width's row kernel for <see cref="RowsByTokens{TDot}"/>.</summary>
        public readonly struct RowDot : IQ8RowDot
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static float Dot(byte* row, sbyte* xq, float* xs, int blocks) => Q8V256.Dot(row, xq, xs, blocks);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static float Dot(byte* row, sbyte* xq, float* xs, int blocks)
        {
            var acc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            for (int b = 0; b < blocks; b++)
            {
                byte* block = row + b * Q8_0.BlockBytes;
                Vector256<sbyte> wq = Vector256.Load((sbyte*)block + 2);
                Vector256<sbyte> sx = Avx2.Sign(Vector256.Load(xq + b * Q8_0.BlockSize), wq);
                Vector256<byte> aw = Avx2.Abs(wq);
                Vector256<int> p32 = AvxVnni.IsSupported
                    ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, aw, sx)
                    : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, sx), ones);
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p32), Vector256.Create(BlockScale(block) * xs[b]), acc);
            }
            return Vector256.Sum(acc);
        }
    }
}
