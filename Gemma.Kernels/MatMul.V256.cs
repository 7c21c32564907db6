using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// F32/BF16 kernels on Vector256&lt;float&gt; (8 lanes). Register tile: 4 weight rows × 2 tokens (8 accumulators,
    /// one 8-lane FMA chain per output, Vector256.Sum, k-blocks added in order, then the scalar tail); rows left over
    /// use the same order (1 × 1). Tokens left over (all of decode) use <c>Row</c>. Which kernel computes an element
    /// depends only on its token index and on rows % 4, never on row chunking, so results do not depend on the thread count.
    /// Loop order per k-block: tokens outer, weight rows inner, so a 2-token activation tile stays in L1 while the
    /// weight rows of the chunk (≤ 512 rows × 1024 cols) are re-read from L2 and each weight is converted once per tile.
    /// </summary>
    private static class V256
    {
        private const int Lanes = 8;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Range<TRow>(in WeightMatrix w, float* x, float* y, int n, int r0, int r1) where TRow : IRowFormat
        {
            int cols = w.Cols, rows = w.Rows;
            long rb = w.RowBytes;
            int vec = cols & ~(Lanes - 1);
            int kb = KBlockSize(vec, n, Lanes);
            int k0 = 0;
            do
            {
                int k1 = Math.Min(vec, k0 + kb);
                var s = new Segment(k0, k1, vec, cols, rows, k0 == 0, k1 == vec);
                int t = 0;
                for (; t + 2 <= n; t += 2)
                {
                    float* xt = x + (long)t * cols;
                    float* yt = y + (long)t * rows;
                    int r = r0;
                    for (; r + 4 <= r1; r += 4) Tile4x2<TRow>(w.Data + r * rb, rb, xt, yt + r, s);
                    for (; r < r1; r++)
                        for (int j = 0; j < 2; j++) Tile1x1<TRow>(w.Data + r * rb, xt + (long)j * cols, yt + (long)j * rows + r, s);
                }
                for (; t < n; t++)
                {
                    float* xt = x + (long)t * cols;
                    float* yt = y + (long)t * rows;
                    int r = r0;
                    for (; r < r1; r++) Row<TRow>(w.Data + r * rb, xt, yt + r, s);
                }
                k0 = k1;
            }
            while (k0 < vec);
        }

        /// <summary>4 weight row(s) from <paramref name="wr"/> × 2 token(s) from <paramref name="xt"/>; <paramref name="yt"/> is the first output element.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x2<TRow>(byte* wr, long rb, float* xt, float* yt, in Segment s) where TRow : IRowFormat
        {
            byte* w0 = wr;
            byte* w1 = wr + 1 * rb;
            byte* w2 = wr + 2 * rb;
            byte* w3 = wr + 3 * rb;
            float* x0 = xt;
            float* x1 = xt + 1 * (long)s.Cols;
            var a00 = Vector256<float>.Zero; var a01 = Vector256<float>.Zero;
            var a10 = Vector256<float>.Zero; var a11 = Vector256<float>.Zero;
            var a20 = Vector256<float>.Zero; var a21 = Vector256<float>.Zero;
            var a30 = Vector256<float>.Zero; var a31 = Vector256<float>.Zero;
            for (int k = s.K0; k < s.K1; k += Lanes)
            {
                var xv0 = Vector256.Load(x0 + k);
                var xv1 = Vector256.Load(x1 + k);
                var wv0 = TRow.Load256(w0, k);
                a00 = Vector256.FusedMultiplyAdd(wv0, xv0, a00);
                a01 = Vector256.FusedMultiplyAdd(wv0, xv1, a01);
                var wv1 = TRow.Load256(w1, k);
                a10 = Vector256.FusedMultiplyAdd(wv1, xv0, a10);
                a11 = Vector256.FusedMultiplyAdd(wv1, xv1, a11);
                var wv2 = TRow.Load256(w2, k);
                a20 = Vector256.FusedMultiplyAdd(wv2, xv0, a20);
                a21 = Vector256.FusedMultiplyAdd(wv2, xv1, a21);
                var wv3 = TRow.Load256(w3, k);
                a30 = Vector256.FusedMultiplyAdd(wv3, xv0, a30);
                a31 = Vector256.FusedMultiplyAdd(wv3, xv1, a31);
            }
            float* sum = stackalloc float[8];
            sum[0] = Vector256.Sum(a00); sum[1] = Vector256.Sum(a01);
            sum[2] = Vector256.Sum(a10); sum[3] = Vector256.Sum(a11);
            sum[4] = Vector256.Sum(a20); sum[5] = Vector256.Sum(a21);
            sum[6] = Vector256.Sum(a30); sum[7] = Vector256.Sum(a31);
            Finish<TRow>(yt, sum[0], s, w0, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows, sum[1], s, w0, x1);
            Finish<TRow>(yt + 1, sum[2], s, w1, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 1, sum[3], s, w1, x1);
            Finish<TRow>(yt + 2, sum[4], s, w2, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 2, sum[5], s, w2, x1);
            Finish<TRow>(yt + 3, sum[6], s, w3, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 3, sum[7], s, w3, x1);
        }

        /// <summary>1 weight row(s) from <paramref name="wr"/> × 1 token(s) from <paramref name="xt"/>; <paramref name="yt"/> is the first output element.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile1x1<TRow>(byte* wr, float* xt, float* yt, in Segment s) where TRow : IRowFormat
        {
            byte* w0 = wr;
            float* x0 = xt;
            var a00 = Vector256<float>.Zero;
            for (int k = s.K0; k < s.K1; k += Lanes)
            {
                var xv0 = Vector256.Load(x0 + k);
                var wv0 = TRow.Load256(w0, k);
                a00 = Vector256.FusedMultiplyAdd(wv0, xv0, a00);
            }
            float* sum = stackalloc float[1];
            sum[0] = Vector256.Sum(a00);
            Finish<TRow>(yt, sum[0], s, w0, x0);
        }

        /// <summary>
        /// One row × one token (decode and the tokens left over from the 2-token tiles): rows one after another
        /// keep the weight read a single sequential stream, which the hardware prefetchers follow far better than
        /// several interleaved rows (measured: ~100 % vs ~60 % of the STREAM-like read rate). Four accumulators
        /// hide the FMA latency; they are combined as (a0 + a1) + (a2 + a3).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Row<TRow>(byte* w0, float* x0, float* yt, in Segment s) where TRow : IRowFormat
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            int k = s.K0;
            for (; k + 4 * Lanes <= s.K1; k += 4 * Lanes)
            {
                a0 = Vector256.FusedMultiplyAdd(TRow.Load256(w0, k), Vector256.Load(x0 + k), a0);
                a1 = Vector256.FusedMultiplyAdd(TRow.Load256(w0, k + 1 * Lanes), Vector256.Load(x0 + k + 1 * Lanes), a1);
                a2 = Vector256.FusedMultiplyAdd(TRow.Load256(w0, k + 2 * Lanes), Vector256.Load(x0 + k + 2 * Lanes), a2);
                a3 = Vector256.FusedMultiplyAdd(TRow.Load256(w0, k + 3 * Lanes), Vector256.Load(x0 + k + 3 * Lanes), a3);
            }
            for (; k < s.K1; k += Lanes) a0 = Vector256.FusedMultiplyAdd(TRow.Load256(w0, k), Vector256.Load(x0 + k), a0);
            Finish<TRow>(yt, Vector256.Sum((a0 + a1) + (a2 + a3)), s, w0, x0);
        }
    }
}
