using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// A 4-bit type's panel unpacker for <see cref="KQuantGemmV512"/> (today Q4_0; the K-quants take several tokens per
    /// pass in their row kernels instead): one weight row cut into 64-element steps (two 32-element activation
    /// blocks), each unpacked to what the 512-bit row dot of <see cref="KQuantV512"/> computes from it — so the GEMM
    /// does the same integer and float operations as decode, in the same order.
    /// </summary>
    internal interface IKQuantPanel
    {
        /// <summary>Offset subtracted from every q in int16 as <c>vpmaddubsw(offset, qx)</c> (Q4_0: 8), or 0.</summary>
        static abstract byte Offset { get; }
        /// <summary>
        /// Writes <paramref name="steps"/> steps of <paramref name="row"/>, step s at <c>dst + s·stride</c>: 64 unsigned q
        /// bytes, 16 float weight factors (lanes 0–7 block 2s, 8–15 block 2s + 1).
        /// </summary>
        static abstract void Pack(byte* row, int steps, byte* dst, int stride);
        /// <summary>The row's result from the vector sum of its steps, as decode finishes it (an odd last block).</summary>
        static abstract float Finish(float vectorSum, byte* row, int cols, sbyte* xq, float* xs);
        /// <summary>The decode row dot (for tokens that do not fill a tile).</summary>
        static abstract float Dot(byte* row, sbyte* xq, float* xs, int cols);
        /// <summary>
        /// 256-bit form of <see cref="Pack"/>: one 32-element block per step (what <see cref="KQuantV256"/> computes per
        /// vector), block b at <c>dst + b·stride</c>: 32 q bytes, 8 equal float factors.
        /// </summary>
        static abstract void Pack256(byte* row, int blocks, byte* dst, int stride);
    }

    /// <summary>
    /// Packed int8 GEMM for Q4_0 on 512 bits (prefill and batches, n ≥ <see cref="GemmMinTokens"/>).
    /// Per group of 4 rows every 64-element step is unpacked once (<see cref="IKQuantPanel.Pack"/>: nibbles split and
    /// masked, the per-block float factor <c>d</c> expanded to 16 lanes) into per-thread scratch, then every token pair
    /// passes over it: per (row, token, step) vpmaddubsw, offset subtract, vpmaddwd, vcvtdq2ps, one multiply by the
    /// token's block scales and one FMA. These are decode's integers and float products (<c>d·dx</c>) accumulated in decode's order
    /// (one 16-lane chain over the steps, then <see cref="Vector512.Sum{T}"/>), so every result equals decode bit for
    /// bit — batch invariance.
    /// </summary>
    private static class KQuantGemmV512
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TP>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
            where TP : struct, IKQuantPanel
        {
            int cols = w.Cols, rows = w.Rows, blocks = cols / 32, steps = blocks / 2;
            const int stepBytes = 128;
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, steps) * 4 * stepBytes / sizeof(float));
            float* sums = stackalloc float[8];
            for (int g = r0; g < r1; g += 4)
            {
                int count = Math.Min(4, r1 - g);
                for (int i = 0; i < 4; i++)
                {
                    if (i < count) TP.Pack(w.Row(g + i), steps, panel + i * stepBytes, 4 * stepBytes);
                    else
                        for (int s = 0; s < steps; s++)
                            new Span<byte>(panel + ((long)s * 4 + i) * stepBytes, stepBytes).Clear();
                }
                int t = 0;
                for (; t + 2 <= n; t += 2)
                {
                    sbyte* xq0 = xq + (long)t * cols;
                    float* xs0 = xs + (long)t * blocks;
                    Tile4x2<TP>(panel, steps, stepBytes, xq0, xs0, cols, blocks, sums);
                    for (int i = 0; i < count; i++)
                    {
                        byte* row = w.Row(g + i);
                        y[(long)t * rows + g + i] = TP.Finish(sums[i], row, cols, xq0, xs0);
                        y[(long)(t + 1) * rows + g + i] = TP.Finish(sums[4 + i], row, cols, xq0 + cols, xs0 + blocks);
                    }
                }
                for (; t < n; t++)
                    for (int i = 0; i < count; i++)
                        y[(long)t * rows + g + i] = TP.Dot(w.Row(g + i), xq + (long)t * cols, xs + (long)t * blocks, cols);
            }
        }

        /// <summary>4 packed rows × 2 tokens: 8 accumulators; writes the 8 vector sums (row-major per token).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x2<TP>(byte* panel, int steps, int stepBytes, sbyte* xq0, float* xs0, int cols, int blocks, float* sums)
            where TP : struct, IKQuantPanel
        {
            sbyte* xq1 = xq0 + cols;
            float* xs1 = xs0 + blocks;
            Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default;
            Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default;
            var offset = Vector512.Create(TP.Offset);
            var ones = Vector512.Create((short)1);
            // Token block scales 16 at a time (8 steps); vpermps picks step s's pair [dx(2s) × 8, dx(2s+1) × 8].
            Vector512<float> dx0 = default, dx1 = default;
            Vector512<int> pick = default, pick0 = Vector512.Create(Vector256.Create(0), Vector256.Create(1)), two = Vector512.Create(2);
            float* tail = stackalloc float[32];
            byte* pp = panel;
            for (int s = 0; s < steps; s++, pp += 4 * stepBytes, pick += two)
            {
                if ((s & 7) == 0)
                {
                    pick = pick0;
                    if (s + 8 <= steps) { dx0 = Vector512.Load(xs0 + 2 * s); dx1 = Vector512.Load(xs1 + 2 * s); }
                    else
                    {
                        // Last < 8 steps: copy what is left so no load reads past the token's scales.
                        for (int j = 0; j < 16; j++)
                        {
                            bool inside = 2 * s + j < 2 * steps;
                            tail[j] = inside ? xs0[2 * s + j] : 0;
                            tail[16 + j] = inside ? xs1[2 * s + j] : 0;
                        }
                        dx0 = Vector512.Load(tail);
                        dx1 = Vector512.Load(tail + 16);
                    }
                }
                var x0 = Vector512.Load(xq0 + 64 * s);
                var x1 = Vector512.Load(xq1 + 64 * s);
                Vector512<short> o0 = default, o1 = default;
                if (TP.Offset != 0)
                {
                    o0 = Avx512BW.MultiplyAddAdjacent(offset, x0);
                    o1 = Avx512BW.MultiplyAddAdjacent(offset, x1);
                }
                var d0 = Avx512F.PermuteVar16x32(dx0, pick);
                var d1 = Avx512F.PermuteVar16x32(dx1, pick);
                a00 = Accumulate<TP>(pp, x0, o0, d0, ones, a00); a01 = Accumulate<TP>(pp, x1, o1, d1, ones, a01);
                a10 = Accumulate<TP>(pp + stepBytes, x0, o0, d0, ones, a10); a11 = Accumulate<TP>(pp + stepBytes, x1, o1, d1, ones, a11);
                a20 = Accumulate<TP>(pp + 2 * stepBytes, x0, o0, d0, ones, a20); a21 = Accumulate<TP>(pp + 2 * stepBytes, x1, o1, d1, ones, a21);
                a30 = Accumulate<TP>(pp + 3 * stepBytes, x0, o0, d0, ones, a30); a31 = Accumulate<TP>(pp + 3 * stepBytes, x1, o1, d1, ones, a31);
            }
            sums[0] = Vector512.Sum(a00); sums[1] = Vector512.Sum(a10); sums[2] = Vector512.Sum(a20); sums[3] = Vector512.Sum(a30);
            sums[4] = Vector512.Sum(a01); sums[5] = Vector512.Sum(a11); sums[6] = Vector512.Sum(a21); sums[7] = Vector512.Sum(a31);
        }

        /// <summary><c>acc += (float)(Σ q·qx [− offset·Σqx] per 4 bytes [× sc]) · (factor · dx)</c> for one packed step.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Accumulate<TP>(byte* p, Vector512<sbyte> x, Vector512<short> offsetSums, Vector512<float> dx, Vector512<short> ones, Vector512<float> acc)
            where TP : struct, IKQuantPanel
        {
            Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(Vector512.Load(p), x);
            if (TP.Offset != 0) p16 -= offsetSums;
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, ones);
            Vector512<float> factor = Vector512.Load((float*)(p + 64));
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), factor * dx, acc);
        }
    }

    /// <summary>
    /// <see cref="KQuantGemmV512"/> on 256 bits (AVX2): steps of one 32-element block, 4 rows × 2 tokens (8 of the 16
    /// ymm registers as accumulators); the products and order of the <see cref="KQuantV256"/> row dots (one 8-lane
    /// chain over the blocks, then <see cref="Vector256.Sum{T}"/>), so again bit-identical to decode.
    /// </summary>
    private static class KQuantGemmV256
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TP>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
            where TP : struct, IKQuantPanel
        {
            int cols = w.Cols, rows = w.Rows, blocks = cols / 32;
            const int stepBytes = 64;
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, blocks) * 4 * stepBytes / sizeof(float));
            float* sums = stackalloc float[8];
            for (int g = r0; g < r1; g += 4)
            {
                int count = Math.Min(4, r1 - g);
                for (int i = 0; i < 4; i++)
                {
                    if (i < count) TP.Pack256(w.Row(g + i), blocks, panel + i * stepBytes, 4 * stepBytes);
                    else
                        for (int b = 0; b < blocks; b++)
                            new Span<byte>(panel + ((long)b * 4 + i) * stepBytes, stepBytes).Clear();
                }
                int t = 0;
                for (; t + 2 <= n; t += 2)
                {
                    sbyte* xq0 = xq + (long)t * cols;
                    float* xs0 = xs + (long)t * blocks;
                    Tile4x2<TP>(panel, blocks, stepBytes, xq0, xs0, cols, sums);
                    for (int i = 0; i < count; i++)
                    {
                        y[(long)t * rows + g + i] = sums[i];
                        y[(long)(t + 1) * rows + g + i] = sums[4 + i];
                    }
                }
                for (; t < n; t++)
                    for (int i = 0; i < count; i++)
                        y[(long)t * rows + g + i] = TP.Dot(w.Row(g + i), xq + (long)t * cols, xs + (long)t * blocks, cols);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x2<TP>(byte* panel, int blocks, int stepBytes, sbyte* xq0, float* xs0, int cols, float* sums)
            where TP : struct, IKQuantPanel
        {
            sbyte* xq1 = xq0 + cols;
            float* xs1 = xs0 + blocks;
            Vector256<float> a00 = default, a10 = default, a20 = default, a30 = default;
            Vector256<float> a01 = default, a11 = default, a21 = default, a31 = default;
            var offset = Vector256.Create(TP.Offset);
            byte* pp = panel;
            for (int b = 0; b < blocks; b++, pp += 4 * stepBytes)
            {
                var x0 = Vector256.Load(xq0 + 32 * b);
                var x1 = Vector256.Load(xq1 + 32 * b);
                Vector256<short> o0 = default, o1 = default;
                if (TP.Offset != 0)
                {
                    o0 = Avx2.MultiplyAddAdjacent(offset, x0);
                    o1 = Avx2.MultiplyAddAdjacent(offset, x1);
                }
                var d0 = Vector256.Create(xs0[b]);
                var d1 = Vector256.Create(xs1[b]);
                a00 = Accumulate<TP>(pp, x0, o0, d0, a00); a01 = Accumulate<TP>(pp, x1, o1, d1, a01);
                a10 = Accumulate<TP>(pp + stepBytes, x0, o0, d0, a10); a11 = Accumulate<TP>(pp + stepBytes, x1, o1, d1, a11);
                a20 = Accumulate<TP>(pp + 2 * stepBytes, x0, o0, d0, a20); a21 = Accumulate<TP>(pp + 2 * stepBytes, x1, o1, d1, a21);
                a30 = Accumulate<TP>(pp + 3 * stepBytes, x0, o0, d0, a30); a31 = Accumulate<TP>(pp + 3 * stepBytes, x1, o1, d1, a31);
            }
            sums[0] = Vector256.Sum(a00); sums[1] = Vector256.Sum(a10); sums[2] = Vector256.Sum(a20); sums[3] = Vector256.Sum(a30);
            sums[4] = Vector256.Sum(a01); sums[5] = Vector256.Sum(a11); sums[6] = Vector256.Sum(a21); sums[7] = Vector256.Sum(a31);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Accumulate<TP>(byte* p, Vector256<sbyte> x, Vector256<short> offsetSums, Vector256<float> dx, Vector256<float> acc)
            where TP : struct, IKQuantPanel
        {
            Vector256<short> p16 = Avx2.MultiplyAddAdjacent(Vector256.Load(p), x);
            if (TP.Offset != 0) p16 -= offsetSums;
            Vector256<int> p32 = Avx2.MultiplyAddAdjacent(p16, Vector256.Create((short)1));
            Vector256<float> factor = Vector256.Load((float*)(p + 32));
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p32), factor * dx, acc);
        }
    }

    /// <summary>Q4_0 steps: block pair (2s, 2s + 1), low nibbles then high nibbles of each block; factor d.</summary>
    private readonly struct Q4_0Panel : IKQuantPanel
    {
        public static byte Offset => 8;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* row, int steps, byte* dst, int stride)
        {
            const int B = Dequantizer.Q4_0BlockBytes;
            var mask = Vector512.Create((byte)0x0F);
            var shifts = Vector512.Create(Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)),
                                          Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)));
            for (int s = 0; s < steps; s++, dst += stride)
            {
                byte* b0 = row + 2 * s * B, b1 = b0 + B;
                Vector128<byte> q0 = Vector128.Load(b0 + 2), q1 = Vector128.Load(b1 + 2);
                Vector512<byte> raw = Vector512.Create(Vector256.Create(q0, q0), Vector256.Create(q1, q1));
                (Avx512BW.ShiftRightLogicalVariable(raw.AsUInt16(), shifts).AsByte() & mask).Store(dst);
                Vector512.Create(Vector256.Create(BlockScale(b0)), Vector256.Create(BlockScale(b1))).Store((float*)(dst + 64));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Finish(float vectorSum, byte* row, int cols, sbyte* xq, float* xs)
        {
            int blocks = cols / 32;
            if ((blocks & 1) == 0) return vectorSum;
            int b = blocks - 1;
            return vectorSum + DotQ4_0Scalar(row + b * Dequantizer.Q4_0BlockBytes, xq + b * 32, xs + b, 1);
        }

        public static float Dot(byte* row, sbyte* xq, float* xs, int cols) => Q4_0Dot.Dot(row, xq, xs, cols);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack256(byte* row, int blocks, byte* dst, int stride)
        {
            var mask = Vector256.Create((byte)0x0F);
            for (int b = 0; b < blocks; b++, dst += stride)
            {
                byte* block = row + b * Dequantizer.Q4_0BlockBytes;
                Vector128<byte> raw = Vector128.Load(block + 2);
                (Vector256.Create(raw, Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask).Store(dst);
                Vector256.Create(BlockScale(block)).Store((float*)(dst + 32));
            }
        }
    }

    /// <summary>The packed Q4_0 GEMM when this CPU has it (512 or 256 bits); else false.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool KQuantGemm(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
    {
        if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported) KQuantGemmV512.Run<Q4_0Panel>(w, xq, xs, y, n, r0, r1);
        else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported) KQuantGemmV256.Run<Q4_0Panel>(w, xq, xs, y, n, r0, r1);
        else if (Int8V128.IsSupported) Q8V128.Gemm<Q4_0Block>(w, xq, xs, y, n, r0, r1);
        else return false;
        return true;
    }
}

internal static unsafe partial class MatMul
{
    /// <summary>Tokens from which the K-quants take the packed GEMM (below: the row kernels, 8 tokens per pass).</summary>
    internal const int KQuantGemmMinTokens = 16;

    /// <summary>The packed K-quant GEMM when this CPU has it (512 bits); else false (the row kernels take the batch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool KQuantGemmK<TP>(in WeightMatrix w, Q8K x, float* y, int n, int r0, int r1) where TP : struct, IKPanel
    {
        if (!(Vector512.IsHardwareAccelerated && Avx512BW.IsSupported)) return false;
        KQuantGemmV512K.Run<TP>(w, x, y, n, r0, r1);
        return true;
    }

    /// <summary>
    /// One K-quant type's panel unpacker for <see cref="KQuantGemmV512K"/>: a super-block of one row into the 8-row
    /// panel (layout in <see cref="KQuantGemmV512K"/>).
    /// </summary>
    private interface IKPanel
    {
        static abstract int BlockBytes { get; }
        /// <summary>Scale groups per super-block: 8 (Q4_K/Q5_K, 32 elements each) or 16 (Q6_K).</summary>
        static abstract int Groups { get; }
        /// <summary>True for Q4_K/Q5_K (a min term with its own float factor); false for Q6_K (offset −32 folded into T).</summary>
        static abstract bool HasMins { get; }
        /// <summary>Writes row <paramref name="r"/> (0–7) of super-block <paramref name="block"/> into the panel at <paramref name="p"/>.</summary>
        static abstract void Pack(byte* block, byte* p, int r, byte* temp);
    }

    private readonly struct Q45Panel<TFive> : IKPanel where TFive : struct, IFlag
    {
        public static int BlockBytes => TFive.Value ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        public static int Groups => 8;
        public static bool HasMins => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, byte* p, int r, byte* temp)
        {
            KQuantV512.UnpackQ45(block, TFive.Value, temp);
            KQuantGemmV512K.ScatterRow(temp, p, r);
            UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
            for (int j = 0; j < 8; j++)
                *(ulong*)(p + KQuantGemmV512K.ScaleOffset + 64 * j + 8 * r) = (ulong)(byte)(sc >> (8 * j)) * 0x0001000100010001UL;
            Avx2.Shuffle(Vector256.Create(m).AsByte(), KQuantV512.MinControl).Store(p + KQuantGemmV512K.AuxOffset(8) + 32 * r);
            Vector128<float> dm = KQuantV512.Scales45(block);
            float* d = (float*)(p + KQuantGemmV512K.DOffset(8));
            d[r] = d[r + 8] = dm.ToScalar();
            d[16 + r] = d[24 + r] = dm.GetElement(1);
        }
    }

    private readonly struct Q6Panel : IKPanel
    {
        public static int BlockBytes => Dequantizer.Q6_KBlockBytes;
        public static int Groups => 16;
        public static bool HasMins => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Pack(byte* block, byte* p, int r, byte* temp)
        {
            KQuantV512.UnpackQ6(block, temp);
            KQuantGemmV512K.ScatterRow(temp, p, r);
            sbyte* sc = (sbyte*)block + 192;
            for (int g = 0; g < 16; g++)
                *(ulong*)(p + KQuantGemmV512K.ScaleOffset + 64 * g + 8 * r) = (ulong)(ushort)sc[g] * 0x0001000100010001UL;
            Avx2.ConvertToVector256Int16(Vector128.Load(sc)).Store((short*)(p + KQuantGemmV512K.AuxOffset(16) + 32 * r));
            float* d = (float*)(p + KQuantGemmV512K.DOffset(16));
            d[r] = d[r + 8] = BlockScale(block + 208);
        }
    }

    /// <summary>
    /// Packed GEMM for Q4_K, Q5_K and Q6_K on Q8_K activations, 512 bits (n ≥ <see cref="KQuantGemmMinTokens"/>).
    /// Per group of 8 rows every super-block is unpacked once into per-thread scratch, 8 rows interleaved by 8 bytes:
    /// vector u (of 32) holds elements 8u … 8u + 7 of the 8 rows (row r in bytes 8r …), then the G scale vectors
    /// (int16 lanes 4r … 4r + 3 = row r's scale of group g), the 16 int16 per row of the auxiliary term (Q4_K/Q5_K:
    /// the mins as [m0, m0, m1, m1, …] against the 16 bsums; Q6_K: the 16 scales, for the offset 32·Σ sc·bsums), and
    /// d (and dmin) of the 8 rows twice (16 floats). Tile: 8 rows × 4 tokens; per token and scale group the group's
    /// vectors (4 of 8 elements for Q4_K/Q5_K, 2 for Q6_K) go through vpmaddubsw against the token's 8 activations
    /// broadcast (vpbroadcastq), are added in int16 (Q4_K: ≤ 4·2·15·127, Q5_K ≤ 4·2·31·127, Q6_K ≤ 2·2·63·127 &lt; 2¹⁵)
    /// and take one vpmaddwd by the scales into the token's int32 accumulator (2 lanes per row) — 5 multiply-pipe
    /// instructions per 256 multiply-adds (Q4_K; Q6_K 6) against the row kernels' 8. Per super-block the lanes are
    /// folded to one exact total per (row, token) (vpermt2d) and the float step of
    /// <see cref="KQuantV512.SuperBlockSums"/> follows on 16 outputs at once (8 rows × 2 tokens), its 16 lane
    /// accumulators per output in scratch — the same integers and float operations as the row kernels, so every
    /// result equals decode bit for bit.
    /// </summary>
    private static class KQuantGemmV512K
    {
        internal const int ScaleOffset = 2048;
        internal static int AuxOffset(int groups) => ScaleOffset + 64 * groups;
        internal static int DOffset(int groups) => AuxOffset(groups) + 256;
        internal static int SuperBlockBytes(int groups) => DOffset(groups) + 128;

        /// <summary>The 32 qwords of one row's element-order q into the panel's 32 vectors at byte 8r.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static void ScatterRow(byte* q, byte* p, int r)
        {
            ulong* src = (ulong*)q;
            byte* dst = p + 8 * r;
            for (int u = 0; u < 32; u++) *(ulong*)(dst + 64 * u) = src[u];
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        [SkipLocalsInit]
        public static void Run<TP>(in WeightMatrix w, Q8K x, float* y, int n, int r0, int r1) where TP : struct, IKPanel
        {
            int cols = w.Cols, rows = w.Rows, superBlocks = cols / QK, groups = TP.Groups, sbBytes = SuperBlockBytes(groups);
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, superBlocks) * sbBytes / sizeof(float));
            byte* tempRaw = stackalloc byte[256 + 64];
            byte* temp = (byte*)(((nint)tempRaw + 63) & ~(nint)63);
            // Float lane accumulators of the tile: [lane l][pair][16 outputs], sums then mins.
            float* fRaw = stackalloc float[2 * 16 * 2 * 16 + 16];
            float* f = (float*)(((nint)fRaw + 63) & ~(nint)63);
            float* outs = stackalloc float[64];
            for (int g = r0; g < r1; g += 8)
            {
                int count = Math.Min(8, r1 - g);
                if (count < 8) new Span<byte>(panel, superBlocks * sbBytes).Clear();
                for (int r = 0; r < count; r++)
                {
                    byte* row = w.Row(g + r);
                    for (int i = 0; i < superBlocks; i++) TP.Pack(row + i * TP.BlockBytes, panel + (long)i * sbBytes, r, temp);
                }
                for (int t = 0; t < n; t += 4)
                {
                    int k = Math.Min(4, n - t);
                    // Tokens past n repeat token t (computed, not written).
                    int t1 = k > 1 ? t + 1 : t, t2 = k > 2 ? t + 2 : t, t3 = k > 3 ? t + 3 : t;
                    Tile<TP>(panel, sbBytes, superBlocks, x.Token(t, cols), x.Token(t1, cols), x.Token(t2, cols), x.Token(t3, cols), f, outs);
                    for (int j = 0; j < k; j++)
                        for (int r = 0; r < count; r++)
                            y[(long)(t + j) * rows + g + r] = outs[16 * j + r];
                }
            }
        }

        /// <summary>8 packed rows × 4 tokens over all super-blocks; <paramref name="outs"/>[16j + r] = token j, row r.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TP>(byte* panel, int sbBytes, int superBlocks, Q8K x0, Q8K x1, Q8K x2, Q8K x3, float* f, float* outs)
            where TP : struct, IKPanel
        {
            for (int i = 0; i < 2 * 16 * 2 * 16; i += 16) Vector512<float>.Zero.Store(f + i);
            float* fm = f + 16 * 2 * 16;
            int groups = TP.Groups, aux = AuxOffset(groups), dOff = DOffset(groups);
            Vector512<int> even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            Vector512<int> odd = even + Vector512<int>.One;
            for (int i = 0; i < superBlocks; i++)
            {
                byte* p = panel + (long)i * sbBytes;
                sbyte* xa = x0.Q + i * QK, xb = x1.Q + i * QK, xc = x2.Q + i * QK, xd = x3.Q + i * QK;
                Vector512<int> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                if (groups == 8)
                    for (int gr = 0; gr < 8; gr++)
                    {
                        byte* pw = p + 256 * gr;
                        Vector512<short> s = Vector512.Load((short*)(p + ScaleOffset + 64 * gr));
                        Vector512<byte> w0 = Vector512.Load(pw), w1 = Vector512.Load(pw + 64), w2 = Vector512.Load(pw + 128), w3 = Vector512.Load(pw + 192);
                        int o = 32 * gr;
                        acc0 += Group4(w0, w1, w2, w3, s, xa + o);
                        acc1 += Group4(w0, w1, w2, w3, s, xb + o);
                        acc2 += Group4(w0, w1, w2, w3, s, xc + o);
                        acc3 += Group4(w0, w1, w2, w3, s, xd + o);
                    }
                else
                    for (int gr = 0; gr < 16; gr++)
                    {
                        byte* pw = p + 128 * gr;
                        Vector512<short> s = Vector512.Load((short*)(p + ScaleOffset + 64 * gr));
                        Vector512<byte> w0 = Vector512.Load(pw), w1 = Vector512.Load(pw + 64);
                        int o = 16 * gr;
                        acc0 += Group2(w0, w1, s, xa + o);
                        acc1 += Group2(w0, w1, s, xb + o);
                        acc2 += Group2(w0, w1, s, xc + o);
                        acc3 += Group2(w0, w1, s, xd + o);
                    }
                // Auxiliary term per token: 8 rows' 16 int16 against the token's 16 bsums, folded to 2 lanes per row.
                Vector512<short> a0 = Vector512.Load((short*)(p + aux)), a1 = Vector512.Load((short*)(p + aux + 64));
                Vector512<short> a2 = Vector512.Load((short*)(p + aux + 128)), a3 = Vector512.Load((short*)(p + aux + 192));
                Vector512<int> m0 = Aux(a0, a1, a2, a3, x0.BSums + 16 * i, even, odd), m1 = Aux(a0, a1, a2, a3, x1.BSums + 16 * i, even, odd);
                Vector512<int> m2 = Aux(a0, a1, a2, a3, x2.BSums + 16 * i, even, odd), m3 = Aux(a0, a1, a2, a3, x3.BSums + 16 * i, even, odd);
                if (!TP.HasMins)
                {
                    acc0 -= Vector512.ShiftLeft(m0, 5); acc1 -= Vector512.ShiftLeft(m1, 5);
                    acc2 -= Vector512.ShiftLeft(m2, 5); acc3 -= Vector512.ShiftLeft(m3, 5);
                }
                // One total per (row, token): [rows 0–7 of token a | rows 0–7 of token b].
                Vector512<int> t01 = Fold(acc0, acc1, even, odd), t23 = Fold(acc2, acc3, even, odd);
                Vector512<float> d = Vector512.Load((float*)(p + dOff));
                Vector512<float> d801 = Vector512.Create(Vector256.Create(x0.D[i]), Vector256.Create(x1.D[i]));
                Vector512<float> d823 = Vector512.Create(Vector256.Create(x2.D[i]), Vector256.Create(x3.D[i]));
                float* fl = f + (i & 15) * 32;
                Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(t01), d * d801, Vector512.Load(fl)).Store(fl);
                Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(t23), d * d823, Vector512.Load(fl + 16)).Store(fl + 16);
                if (TP.HasMins)
                {
                    Vector512<int> mm01 = Fold(m0, m1, even, odd), mm23 = Fold(m2, m3, even, odd);
                    Vector512<float> dmin = Vector512.Load((float*)(p + dOff + 64));
                    float* fml = fm + (i & 15) * 32;
                    Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(mm01), dmin * d801, Vector512.Load(fml)).Store(fml);
                    Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(mm23), dmin * d823, Vector512.Load(fml + 16)).Store(fml + 16);
                }
            }
            for (int pair = 0; pair < 2; pair++)
            {
                Vector512<float> sum = TreeSum(f + 16 * pair);
                if (TP.HasMins) sum -= TreeSum(fm + 16 * pair);
                sum.GetLower().Store(outs + 32 * pair);
                sum.GetUpper().Store(outs + 32 * pair + 16);
            }
        }

        /// <summary>
        /// <see cref="KQuantV512.TreeSum"/> across the 16 lane accumulators of 16 outputs (vector l at <c>f + 32l</c>):
        /// l + (l + 8), then + 4, then (0 + 2) + (1 + 3) — the same additions per output.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> TreeSum(float* f)
        {
            Vector512<float> a0 = Vector512.Load(f) + Vector512.Load(f + 32 * 8), a1 = Vector512.Load(f + 32) + Vector512.Load(f + 32 * 9);
            Vector512<float> a2 = Vector512.Load(f + 32 * 2) + Vector512.Load(f + 32 * 10), a3 = Vector512.Load(f + 32 * 3) + Vector512.Load(f + 32 * 11);
            Vector512<float> a4 = Vector512.Load(f + 32 * 4) + Vector512.Load(f + 32 * 12), a5 = Vector512.Load(f + 32 * 5) + Vector512.Load(f + 32 * 13);
            Vector512<float> a6 = Vector512.Load(f + 32 * 6) + Vector512.Load(f + 32 * 14), a7 = Vector512.Load(f + 32 * 7) + Vector512.Load(f + 32 * 15);
            Vector512<float> b0 = a0 + a4, b1 = a1 + a5, b2 = a2 + a6, b3 = a3 + a7;
            return (b0 + b2) + (b1 + b3);
        }

        /// <summary>Q4_K/Q5_K scale group: 4 vectors of 8 elements × the token's 32 activations, int16 sum, × scales.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Group4(Vector512<byte> w0, Vector512<byte> w1, Vector512<byte> w2, Vector512<byte> w3, Vector512<short> s, sbyte* x)
        {
            Vector512<short> p = Avx512BW.MultiplyAddAdjacent(w0, Broadcast8(x)) + Avx512BW.MultiplyAddAdjacent(w1, Broadcast8(x + 8))
                + Avx512BW.MultiplyAddAdjacent(w2, Broadcast8(x + 16)) + Avx512BW.MultiplyAddAdjacent(w3, Broadcast8(x + 24));
            return Avx512BW.MultiplyAddAdjacent(p, s);
        }

        /// <summary>Q6_K scale group: 2 vectors of 8 elements × the token's 16 activations.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Group2(Vector512<byte> w0, Vector512<byte> w1, Vector512<short> s, sbyte* x)
        {
            Vector512<short> p = Avx512BW.MultiplyAddAdjacent(w0, Broadcast8(x)) + Avx512BW.MultiplyAddAdjacent(w1, Broadcast8(x + 8));
            return Avx512BW.MultiplyAddAdjacent(p, s);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<sbyte> Broadcast8(sbyte* x) => Vector512.Create(Unsafe.ReadUnaligned<long>(x)).AsSByte();

        /// <summary>[a₀ + a₁, a₂ + a₃, … | b₀ + b₁, …]: neighbouring lanes of a, then of b, added.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Fold(Vector512<int> a, Vector512<int> b, Vector512<int> even, Vector512<int> odd) =>
            Avx512F.PermuteVar16x32x2(a, even, b) + Avx512F.PermuteVar16x32x2(a, odd, b);

        /// <summary>The auxiliary term of one token: rows (2k, 2k + 1) per vector against the 16 bsums, 2 lanes per row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Aux(Vector512<short> a0, Vector512<short> a1, Vector512<short> a2, Vector512<short> a3, short* bsums,
            Vector512<int> even, Vector512<int> odd)
        {
            Vector512<short> b = KQuantV512.Twice((byte*)bsums).AsInt16();
            Vector512<int> v0 = Avx512BW.MultiplyAddAdjacent(a0, b), v1 = Avx512BW.MultiplyAddAdjacent(a1, b);
            Vector512<int> v2 = Avx512BW.MultiplyAddAdjacent(a2, b), v3 = Avx512BW.MultiplyAddAdjacent(a3, b);
            return Fold(Fold(v0, v1, even, odd), Fold(v2, v3, even, odd), even, odd);
        }
    }
}
