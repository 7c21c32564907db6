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
