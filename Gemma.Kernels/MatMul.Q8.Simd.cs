using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

public static unsafe partial class MatMul
{
    /// <summary>
    /// Q8_0 on 512 bits (AVX-512BW): two 32-byte blocks per vector. u8×s8 products via the sign trick — vpmaddubsw
    /// wants unsigned × signed, so use |w| (≤ 128 fits a byte, exact even for −128) and x with w's sign
    /// (x ∈ [−127, 127], so negation cannot overflow); pair sums ≤ 2·128·127 &lt; 2¹⁵, so vpmaddubsw never saturates.
    /// vpmaddwd with ones then gives 16 int32 lanes (8 per block), converted exactly to float and FMA'd with the
    /// block scale products.
    /// </summary>
    private static class Q8V512
    {
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += 32, q += 32)
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

        public static void Range(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
        {
            int blocks = w.Cols / Q8_0.BlockSize, rows = w.Rows;
            long rb = w.RowBytes;
            int r = r0;
            for (; r + 4 <= r1; r += 4)
            {
                byte* wr = w.Data + r * rb;
                for (int t = 0; t < n; t++)
                    Tile4(wr, rb, xq + (long)t * w.Cols, xs + (long)t * blocks, blocks, y + (long)t * rows + r);
            }
            for (; r < r1; r++)
                for (int t = 0; t < n; t++)
                    y[(long)t * rows + r] = Dot(w.Data + r * rb, xq + (long)t * w.Cols, xs + (long)t * blocks, blocks);
        }

        /// <summary>Lanes 0-7 hold block b's partial integer sums, lanes 8-15 block b+1's.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> BlockPair(byte* b0, Vector512<sbyte> xv, Vector512<sbyte> negX, float xs0, float xs1, Vector512<float> acc)
        {
            Vector512<sbyte> wq = Vector512.Create(Vector256.Load((sbyte*)b0 + 2), Vector256.Load((sbyte*)b0 + Q8_0.BlockBytes + 2));
            Vector512<sbyte> sx = Vector512.ConditionalSelect(Vector512.LessThan(wq, Vector512<sbyte>.Zero), negX, xv);
            Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(Vector512.Abs(wq).AsByte(), sx);
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1));
            var scale = Vector512.Create(Vector256.Create(BlockScale(b0) * xs0), Vector256.Create(BlockScale(b0 + Q8_0.BlockBytes) * xs1));
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), scale, acc);
        }

        /// <summary>Odd last block: exact integer sum, added after the vector sum (same order in every tile).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float LastBlock(byte* row, sbyte* xq, float* xs, int blocks)
        {
            if ((blocks & 1) == 0) return 0;
            int b = blocks - 1;
            byte* block = row + b * Q8_0.BlockBytes;
            return BlockDotScalar((sbyte*)block + 2, xq + b * Q8_0.BlockSize) * (BlockScale(block) * xs[b]);
        }

        private static float Dot(byte* row, sbyte* xq, float* xs, int blocks)
        {
            var acc = Vector512<float>.Zero;
            for (int b = 0; b + 2 <= blocks; b += 2)
            {
                var xv = Vector512.Load(xq + b * 32);
                acc = BlockPair(row + b * Q8_0.BlockBytes, xv, -xv, xs[b], xs[b + 1], acc);
            }
            return Vector512.Sum(acc) + LastBlock(row, xq, xs, blocks);
        }

        private static void Tile4(byte* w0, long rb, sbyte* xq, float* xs, int blocks, float* y)
        {
            byte* w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int b = 0; b + 2 <= blocks; b += 2)
            {
                var xv = Vector512.Load(xq + b * 32);
                var negX = -xv;
                float s0 = xs[b], s1 = xs[b + 1];
                long o = b * Q8_0.BlockBytes;
                a0 = BlockPair(w0 + o, xv, negX, s0, s1, a0);
                a1 = BlockPair(w1 + o, xv, negX, s0, s1, a1);
                a2 = BlockPair(w2 + o, xv, negX, s0, s1, a2);
                a3 = BlockPair(w3 + o, xv, negX, s0, s1, a3);
            }
            y[0] = Vector512.Sum(a0) + LastBlock(w0, xq, xs, blocks);
            y[1] = Vector512.Sum(a1) + LastBlock(w1, xq, xs, blocks);
            y[2] = Vector512.Sum(a2) + LastBlock(w2, xq, xs, blocks);
            y[3] = Vector512.Sum(a3) + LastBlock(w3, xq, xs, blocks);
        }
    }

    /// <summary>
    /// Q8_0 on 256 bits (AVX2, AVX-VNNI when present): one block per vector; |w| and vpsignb put w's sign on x,
    /// then vpdpbusd (or vpmaddubsw + vpmaddwd, same exact int32 lanes) and an FMA with the block's scale product.
    /// </summary>
    private static class Q8V256
    {
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += 32, q += 32)
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

        public static void Range(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
        {
            int blocks = w.Cols / Q8_0.BlockSize, rows = w.Rows;
            long rb = w.RowBytes;
            for (int r = r0; r < r1; r++)
                for (int t = 0; t < n; t++)
                    y[(long)t * rows + r] = Dot(w.Data + r * rb, xq + (long)t * w.Cols, xs + (long)t * blocks, blocks);
        }

        private static float Dot(byte* row, sbyte* xq, float* xs, int blocks)
        {
            var acc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            for (int b = 0; b < blocks; b++)
            {
                byte* block = row + b * Q8_0.BlockBytes;
                Vector256<sbyte> wq = Vector256.Load((sbyte*)block + 2);
                Vector256<sbyte> sx = Avx2.Sign(Vector256.Load(xq + b * 32), wq);
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
