using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// F32/BF16 kernels on Vector512&lt;float&gt; (16 lanes). Register tile: 4 weight rows × 4 tokens (16 accumulators,
    /// one 16-lane FMA chain per output, Vector512.Sum, k-blocks added in order, then the scalar tail); rows left over
    /// use the same order (1 × 1). Tokens left over (all of decode) use <c>Row</c>. Which kernel computes an element
    /// depends only on its token index and on rows % 4, never on row chunking, so results do not depend on the thread count.
    /// Loop order per k-block: tokens outer, weight rows inner, so a 4-token activation tile stays in L1 while the
    /// weight rows of the chunk (≤ 512 rows × 1024 cols) are re-read from L2 and each weight is converted once per tile.
    /// </summary>
    private static class V512
    {
        private const int Lanes = 16;

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
                for (; t + 4 <= n; t += 4)
                {
                    float* xt = x + (long)t * cols;
                    float* yt = y + (long)t * rows;
                    int r = r0;
                    for (; r + 4 <= r1; r += 4) Tile4x4<TRow>(w.Data + r * rb, rb, xt, yt + r, s);
                    for (; r < r1; r++)
                        for (int j = 0; j < 4; j++) Tile1x1<TRow>(w.Data + r * rb, xt + (long)j * cols, yt + (long)j * rows + r, s);
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

        /// <summary>4 weight row(s) from <paramref name="wr"/> × 4 token(s) from <paramref name="xt"/>; <paramref name="yt"/> is the first output element.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x4<TRow>(byte* wr, long rb, float* xt, float* yt, in Segment s) where TRow : IRowFormat
        {
            byte* w0 = wr;
            byte* w1 = wr + 1 * rb;
            byte* w2 = wr + 2 * rb;
            byte* w3 = wr + 3 * rb;
            float* x0 = xt;
            float* x1 = xt + 1 * (long)s.Cols;
            float* x2 = xt + 2 * (long)s.Cols;
            float* x3 = xt + 3 * (long)s.Cols;
            var a00 = Vector512<float>.Zero; var a01 = Vector512<float>.Zero; var a02 = Vector512<float>.Zero; var a03 = Vector512<float>.Zero;
            var a10 = Vector512<float>.Zero; var a11 = Vector512<float>.Zero; var a12 = Vector512<float>.Zero; var a13 = Vector512<float>.Zero;
            var a20 = Vector512<float>.Zero; var a21 = Vector512<float>.Zero; var a22 = Vector512<float>.Zero; var a23 = Vector512<float>.Zero;
            var a30 = Vector512<float>.Zero; var a31 = Vector512<float>.Zero; var a32 = Vector512<float>.Zero; var a33 = Vector512<float>.Zero;
            for (int k = s.K0; k < s.K1; k += Lanes)
            {
                var xv0 = Vector512.Load(x0 + k);
                var xv1 = Vector512.Load(x1 + k);
                var xv2 = Vector512.Load(x2 + k);
                var xv3 = Vector512.Load(x3 + k);
                var wv0 = TRow.Load512(w0, k);
                a00 = Vector512.FusedMultiplyAdd(wv0, xv0, a00);
                a01 = Vector512.FusedMultiplyAdd(wv0, xv1, a01);
                a02 = Vector512.FusedMultiplyAdd(wv0, xv2, a02);
                a03 = Vector512.FusedMultiplyAdd(wv0, xv3, a03);
                var wv1 = TRow.Load512(w1, k);
                a10 = Vector512.FusedMultiplyAdd(wv1, xv0, a10);
                a11 = Vector512.FusedMultiplyAdd(wv1, xv1, a11);
                a12 = Vector512.FusedMultiplyAdd(wv1, xv2, a12);
                a13 = Vector512.FusedMultiplyAdd(wv1, xv3, a13);
                var wv2 = TRow.Load512(w2, k);
                a20 = Vector512.FusedMultiplyAdd(wv2, xv0, a20);
                a21 = Vector512.FusedMultiplyAdd(wv2, xv1, a21);
                a22 = Vector512.FusedMultiplyAdd(wv2, xv2, a22);
                a23 = Vector512.FusedMultiplyAdd(wv2, xv3, a23);
                var wv3 = TRow.Load512(w3, k);
                a30 = Vector512.FusedMultiplyAdd(wv3, xv0, a30);
                a31 = Vector512.FusedMultiplyAdd(wv3, xv1, a31);
                a32 = Vector512.FusedMultiplyAdd(wv3, xv2, a32);
                a33 = Vector512.FusedMultiplyAdd(wv3, xv3, a33);
            }
            float* sum = stackalloc float[16];
            sum[0] = Vector512.Sum(a00); sum[1] = Vector512.Sum(a01); sum[2] = Vector512.Sum(a02); sum[3] = Vector512.Sum(a03);
            sum[4] = Vector512.Sum(a10); sum[5] = Vector512.Sum(a11); sum[6] = Vector512.Sum(a12); sum[7] = Vector512.Sum(a13);
            sum[8] = Vector512.Sum(a20); sum[9] = Vector512.Sum(a21); sum[10] = Vector512.Sum(a22); sum[11] = Vector512.Sum(a23);
            sum[12] = Vector512.Sum(a30); sum[13] = Vector512.Sum(a31); sum[14] = Vector512.Sum(a32); sum[15] = Vector512.Sum(a33);
            Finish<TRow>(yt, sum[0], s, w0, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows, sum[1], s, w0, x1);
            Finish<TRow>(yt + 2 * (long)s.Rows, sum[2], s, w0, x2);
            Finish<TRow>(yt + 3 * (long)s.Rows, sum[3], s, w0, x3);
            Finish<TRow>(yt + 1, sum[4], s, w1, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 1, sum[5], s, w1, x1);
            Finish<TRow>(yt + 2 * (long)s.Rows + 1, sum[6], s, w1, x2);
            Finish<TRow>(yt + 3 * (long)s.Rows + 1, sum[7], s, w1, x3);
            Finish<TRow>(yt + 2, sum[8], s, w2, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 2, sum[9], s, w2, x1);
            Finish<TRow>(yt + 2 * (long)s.Rows + 2, sum[10], s, w2, x2);
            Finish<TRow>(yt + 3 * (long)s.Rows + 2, sum[11], s, w2, x3);
            Finish<TRow>(yt + 3, sum[12], s, w3, x0);
            Finish<TRow>(yt + 1 * (long)s.Rows + 3, sum[13], s, w3, x1);
            Finish<TRow>(yt + 2 * (long)s.Rows + 3, sum[14], s, w3, x2);
            Finish<TRow>(yt + 3 * (long)s.Rows + 3, sum[15], s, w3, x3);
        }

        /// <summary>1 weight row(s) from <paramref name="wr"/> × 1 token(s) from <paramref name="xt"/>; <paramref name="yt"/> is the first output element.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile1x1<TRow>(byte* wr, float* xt, float* yt, in Segment s) where TRow : IRowFormat
        {
            byte* w0 = wr;
            float* x0 = xt;
            var a00 = Vector512<float>.Zero;
            for (int k = s.K0; k < s.K1; k += Lanes)
            {
                var xv0 = Vector512.Load(x0 + k);
                var wv0 = TRow.Load512(w0, k);
                a00 = Vector512.FusedMultiplyAdd(wv0, xv0, a00);
            }
            float* sum = stackalloc float[1];
            sum[0] = Vector512.Sum(a00);
            Finish<TRow>(yt, sum[0], s, w0, x0);
        }

        /// <summary>
        /// One row × one token (decode and the tokens left over from the 4-token tiles): rows one after another
        /// keep the weight read a single sequential stream, which the hardware prefetchers follow far better than
        /// several interleaved rows (measured: ~100 % vs ~60 % of the STREAM-like read rate). Four accumulators
        /// hide the FMA latency; they are combined as (a0 + a1) + (a2 + a3).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Row<TRow>(byte* w0, float* x0, float* yt, in Segment s) where TRow : IRowFormat
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            int k = s.K0;
            for (; k + 4 * Lanes <= s.K1; k += 4 * Lanes)
            {
                a0 = Vector512.FusedMultiplyAdd(TRow.Load512(w0, k), Vector512.Load(x0 + k), a0);
                a1 = Vector512.FusedMultiplyAdd(TRow.Load512(w0, k + 1 * Lanes), Vector512.Load(x0 + k + 1 * Lanes), a1);
                a2 = Vector512.FusedMultiplyAdd(TRow.Load512(w0, k + 2 * Lanes), Vector512.Load(x0 + k + 2 * Lanes), a2);
                a3 = Vector512.FusedMultiplyAdd(TRow.Load512(w0, k + 3 * Lanes), Vector512.Load(x0 + k + 3 * Lanes), a3);
            }
            for (; k < s.K1; k += Lanes) a0 = Vector512.FusedMultiplyAdd(TRow.Load512(w0, k), Vector512.Load(x0 + k), a0);
            Finish<TRow>(yt, Vector512.Sum((a0 + a1) + (a2 + a3)), s, w0, x0);
        }
    }
}
