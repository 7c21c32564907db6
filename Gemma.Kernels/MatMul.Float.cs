using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// Float kernels (F32, BF16 and any <see cref="IRowFormat"/>), written once over <see cref="IVectorOps{TV}"/> and
    /// specialized per width (Vector512: 16 lanes, Vector256: 8, Vector128: 4 — AdvSimd on ARM64).
    /// <para>
    /// <b>The reduction order</b> (the same for every output element, whatever the batch, tile, chunk or thread count —
    /// batch invariance): the vector part of the columns is cut into k-blocks (<see cref="KBlockSize"/>, from the
    /// column count only); inside a block, vector chunk c (of <c>Lanes</c> columns) is FMA'd into accumulator
    /// <c>c % 4</c>, chunks ascending; the block's value is <c>Sum((a0 + a1) + (a2 + a3))</c>; block values are added
    /// to the output in block order, and the scalar tail (columns past the last full vector) after the last block.
    /// </para>
    /// <para>
    /// <b>Decode</b> (n = 1) reads each weight row once, front to back, straight from the
    /// (memory-mapped) matrix: one sequential stream, four independent FMA chains per row.
    /// <b>GEMM</b> (n ≥ <see cref="GemmMinTokens"/>): per row panel of <see cref="PanelRows"/> rows and per k-block, the
    /// weights are unpacked once into a float32 panel (per-thread scratch, L2-resident) laid out so the micro-kernel
    /// reads it sequentially; a register tile of 4 rows × 4 tokens (Vector512, ARM64 Vector128; 4 × 2 on Vector256 and x86 Vector128) then walks the
    /// block four times, once per accumulator chain (chunks j, j + 4, …), so each output keeps the decode order with
    /// one accumulator per output in registers. A row panel's last group is padded with zero rows. While a panel is
    /// multiplied, the source bytes of the next one are software-prefetched a few lines per tile (x86), so Pack reads
    /// cache instead of waiting on DRAM (Pack was ≈ 7 % of a 128-token GEMM, the prefetch saves 4–6 %).
    /// </para>
    /// </summary>
    [SkipLocalsInit] // the tiles' partial-sum scratch is fully written before it is read
    private static class FloatKernels
    {
        /// <summary>Rows of one unpacked panel (× k-block ≤ 1152 columns × 4 bytes = 288 KB, under a third of L2).</summary>
        internal const int PanelRows = 64;

        /// <summary>Output rows [r0, r1) for all n tokens.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
        public static void Range<TOps, TV, TRow>(in WeightMatrix w, float* x, float* y, int n, int r0, int r1)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            if (n >= GemmMinTokens) Gemm<TOps, TV, TRow>(w, x, y, n, r0, r1);
            else
                for (int t = 0; t < n; t++)
                    Decode<TOps, TV, TRow>(w, x + (long)t * w.Cols, y + (long)t * w.Rows, r0, r1);
        }

        /// <summary>One token, rows one after another (a single sequential weight stream for the prefetchers).</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
        private static void Decode<TOps, TV, TRow>(in WeightMatrix w, float* x, float* y, int r0, int r1)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int cols = w.Cols, L = TOps.Lanes;
            int vec = cols & ~(L - 1);
            int kb = KBlockSize(vec, L);
            long rb = w.RowBytes;
            for (int r = r0; r < r1; r++)
            {
                byte* row = w.Data + r * rb;
                int k0 = 0;
                do
                {
                    int k1 = Math.Min(vec, k0 + kb);
                    Finish<TRow>(y + r, RowBlock<TOps, TV, TRow>(row, x, k0, k1), new Segment(k0, k1, vec, cols, w.Rows), row, x);
                    k0 = k1;
                }
                while (k0 < vec);
            }
        }

        /// <summary>One row's k-block [k0, k1) in the reduction order (four chains by chunk index mod 4).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float RowBlock<TOps, TV, TRow>(byte* row, float* x, int k0, int k1)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            int k = k0;
            for (; k + 4 * L <= k1; k += 4 * L)
            {
                a0 = TOps.Fma(TOps.LoadRow<TRow>(row, k), TOps.Load(x + k), a0);
                a1 = TOps.Fma(TOps.LoadRow<TRow>(row, k + L), TOps.Load(x + k + L), a1);
                a2 = TOps.Fma(TOps.LoadRow<TRow>(row, k + 2 * L), TOps.Load(x + k + 2 * L), a2);
                a3 = TOps.Fma(TOps.LoadRow<TRow>(row, k + 3 * L), TOps.Load(x + k + 3 * L), a3);
            }
            if (k < k1)
            {
                a0 = TOps.Fma(TOps.LoadRow<TRow>(row, k), TOps.Load(x + k), a0);
                if ((k += L) < k1)
                {
                    a1 = TOps.Fma(TOps.LoadRow<TRow>(row, k), TOps.Load(x + k), a1);
                    if ((k += L) < k1) a2 = TOps.Fma(TOps.LoadRow<TRow>(row, k), TOps.Load(x + k), a2);
                }
            }
            return TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
        }

        /// <summary>Packed GEMM over rows [r0, r1): panels of <see cref="PanelRows"/> rows, k-blocks, token tiles.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
        private static void Gemm<TOps, TV, TRow>(in WeightMatrix w, float* x, float* y, int n, int r0, int r1)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int cols = w.Cols, rows = w.Rows, L = TOps.Lanes;
            int vec = cols & ~(L - 1);
            int kb = KBlockSize(vec, L);
            long rb = w.RowBytes;
            // Tokens per register tile, so that 16 (or 8) accumulators + operands fit the register file: 4 with 32
            // vector registers (AVX-512's zmm, ARM64's v0–v31), 2 with 16 (AVX2's ymm, SSE's xmm).
            int tile = L == 16 || (L == 4 && AdvSimd.Arm64.IsSupported) ? 4 : 2;
            float* panel = PanelScratch.Get(PanelRows * Math.Max(kb, L));
            // The tiles' pass accumulators (p0 + p1 and p2 of ≤ 16 outputs × ≤ 16 lanes) and reduction scratch, allocated
            // once here: the tiles themselves then have no stack probe.
            float* part = stackalloc float[2 * 16 * 16];
            float* scratch = stackalloc float[16 * 16 + 16];
            for (int p0 = r0; p0 < r1; p0 += PanelRows)
            {
                int p1 = Math.Min(r1, p0 + PanelRows);
                int k0 = 0;
                do
                {
                    int k1 = Math.Min(vec, k0 + kb);
                    var s = new Segment(k0, k1, vec, cols, rows);
                    int chunks = (k1 - k0) / L;
                    for (int g = p0; g < p1; g += 4) Pack<TOps, TV, TRow>(w, g, Math.Min(4, p1 - g), k0, chunks, panel + (long)(g - p0) * (k1 - k0));
                    // While this panel is multiplied, pull the next one's weights (the next k-block, else the next row
                    // panel's first) towards the core, a few lines per tile, so the next Pack reads cache, not DRAM.
                    var next = k1 < vec ? new PanelPrefetch(w, p0, p1, k1, Math.Min(vec, k1 + kb), TRow.BytesPerElement)
                        : p1 < r1 ? new PanelPrefetch(w, p1, Math.Min(r1, p1 + PanelRows), 0, Math.Min(vec, kb), TRow.BytesPerElement)
                        : default;
                    int groups = (p1 - p0 + 3) / 4;
                    next.Pace(groups * ((n + tile - 1) / tile));
                    int t = 0;
                    for (; t + tile <= n; t += tile)
                        for (int g = p0; g < p1; g += 4)
                        {
                            next.Step();
                            float* gp = panel + (long)(g - p0) * (k1 - k0);
                            if (tile == 4) Tile4x4<TOps, TV, TRow>(gp, chunks, w, g, Math.Min(4, p1 - g), x + (long)t * cols, y + (long)t * rows, s, part, scratch);
                            else Tile4x2<TOps, TV, TRow>(gp, chunks, w, g, Math.Min(4, p1 - g), x + (long)t * cols, y + (long)t * rows, s, part, scratch);
                        }
                    for (; t < n; t++)
                        for (int g = p0; g < p1; g += 4)
                        {
                            next.Step();
                            Tile4x1<TOps, TV, TRow>(panel + (long)(g - p0) * (k1 - k0), chunks, w, g, Math.Min(4, p1 - g), x + (long)t * cols, y + (long)t * rows, s, part, scratch);
                        }
                    k0 = k1;
                }
                while (k0 < vec);
            }
        }

        /// <summary>
        /// Software prefetch of the source bytes of one weight panel (rows [p0, p1) × columns [k0, k1)), spread evenly
        /// over the tile calls of the current panel (<see cref="Pace"/> then one <see cref="Step"/> per tile). No-op
        /// where there is no prefetch instruction (ARM64: .NET has no intrinsic) and for the default value.
        /// </summary>
        private struct PanelPrefetch
        {
            private readonly byte* _start;
            private readonly long _rowBytes;
            private readonly int _linesPerRow, _total;
            private int _next, _perStep;

            public PanelPrefetch(in WeightMatrix w, int p0, int p1, int k0, int k1, int bytesPerElement)
            {
                _rowBytes = w.RowBytes;
                byte* first = w.Data + p0 * _rowBytes + (long)k0 * bytesPerElement;
                byte* end = first + (long)(k1 - k0) * bytesPerElement;
                _start = (byte*)((nint)first & ~(nint)63);
                _linesPerRow = (int)((end - _start + 63) / 64);
                _total = Sse.IsSupported ? (p1 - p0) * _linesPerRow : 0;
            }

            /// <summary>Spreads the lines over <paramref name="steps"/> steps.</summary>
            public void Pace(int steps) => _perStep = steps <= 0 ? 0 : (_total + steps - 1) / steps;

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public void Step()
            {
                for (int i = 0; i < _perStep && _next < _total; i++, _next++)
                {
                    int row = _next / _linesPerRow, line = _next - row * _linesPerRow;
                    Sse.Prefetch0(_start + row * _rowBytes + line * 64);
                }
            }
        }

        /// <summary>
        /// Unpacks rows [g, g + count) × columns [k0, k0 + chunks·L) into <paramref name="dst"/> as float32, in the order
        /// the micro-kernels read: pass j (chunks j, j + 4, …), then chunk, then row (4 rows, missing rows zero), L lanes.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Pack<TOps, TV, TRow>(in WeightMatrix w, int g, int count, int k0, int chunks, float* dst)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes;
            for (int j = 0; j < 4; j++)
                for (int c = j; c < chunks; c += 4, dst += 4 * L)
                {
                    int k = k0 + c * L;
                    for (int i = 0; i < 4; i++)
                        TOps.Store(dst + i * L, i < count ? TOps.LoadRow<TRow>(w.Row(g + i), k) : TOps.Zero);
                }
        }

        /// <summary>4 rows (panel group <paramref name="gp"/>) × 4 tokens: 16 accumulators, one per output, per pass.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x4<TOps, TV, TRow>(float* gp, int chunks, in WeightMatrix w, int g, int count, float* xt, float* yt, in Segment s, float* part, float* scratch)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes;
            long cs = s.Cols;
            float* x0 = xt + s.K0, x1 = x0 + cs, x2 = x0 + 2 * cs, x3 = x0 + 3 * cs; // k-block start
            float* pw = gp;
            for (int j = 0; j < 4; j++)
            {
                TV a00 = TOps.Zero, a01 = TOps.Zero, a02 = TOps.Zero, a03 = TOps.Zero;
                TV a10 = TOps.Zero, a11 = TOps.Zero, a12 = TOps.Zero, a13 = TOps.Zero;
                TV a20 = TOps.Zero, a21 = TOps.Zero, a22 = TOps.Zero, a23 = TOps.Zero;
                TV a30 = TOps.Zero, a31 = TOps.Zero, a32 = TOps.Zero, a33 = TOps.Zero;
                for (int c = j; c < chunks; c += 4, pw += 4 * L)
                {
                    int k = c * L;
                    TV xv0 = TOps.Load(x0 + k), xv1 = TOps.Load(x1 + k), xv2 = TOps.Load(x2 + k), xv3 = TOps.Load(x3 + k);
                    TV wv = TOps.Load(pw);
                    a00 = TOps.Fma(wv, xv0, a00); a01 = TOps.Fma(wv, xv1, a01); a02 = TOps.Fma(wv, xv2, a02); a03 = TOps.Fma(wv, xv3, a03);
                    wv = TOps.Load(pw + L);
                    a10 = TOps.Fma(wv, xv0, a10); a11 = TOps.Fma(wv, xv1, a11); a12 = TOps.Fma(wv, xv2, a12); a13 = TOps.Fma(wv, xv3, a13);
                    wv = TOps.Load(pw + 2 * L);
                    a20 = TOps.Fma(wv, xv0, a20); a21 = TOps.Fma(wv, xv1, a21); a22 = TOps.Fma(wv, xv2, a22); a23 = TOps.Fma(wv, xv3, a23);
                    wv = TOps.Load(pw + 3 * L);
                    a30 = TOps.Fma(wv, xv0, a30); a31 = TOps.Fma(wv, xv1, a31); a32 = TOps.Fma(wv, xv2, a32); a33 = TOps.Fma(wv, xv3, a33);
                }
                // Output index = token · 4 + row (a{row}{token}).
                if (j == 3 && RegisterSums<TV>())
                {
                    // The last pass: the 16 combined vectors go to the transposed reduction from registers.
                    Ops512.SumEach(Last<TOps, TV>(part, 0, a00), Last<TOps, TV>(part, 1, a10), Last<TOps, TV>(part, 2, a20), Last<TOps, TV>(part, 3, a30),
                        Last<TOps, TV>(part, 4, a01), Last<TOps, TV>(part, 5, a11), Last<TOps, TV>(part, 6, a21), Last<TOps, TV>(part, 7, a31),
                        Last<TOps, TV>(part, 8, a02), Last<TOps, TV>(part, 9, a12), Last<TOps, TV>(part, 10, a22), Last<TOps, TV>(part, 11, a32),
                        Last<TOps, TV>(part, 12, a03), Last<TOps, TV>(part, 13, a13), Last<TOps, TV>(part, 14, a23), Last<TOps, TV>(part, 15, a33),
                        scratch + 16 * 16);
                    break;
                }
                Pass<TOps, TV>(j, part, scratch, 0, a00); Pass<TOps, TV>(j, part, scratch, 4, a01); Pass<TOps, TV>(j, part, scratch, 8, a02); Pass<TOps, TV>(j, part, scratch, 12, a03);
                Pass<TOps, TV>(j, part, scratch, 1, a10); Pass<TOps, TV>(j, part, scratch, 5, a11); Pass<TOps, TV>(j, part, scratch, 9, a12); Pass<TOps, TV>(j, part, scratch, 13, a13);
                Pass<TOps, TV>(j, part, scratch, 2, a20); Pass<TOps, TV>(j, part, scratch, 6, a21); Pass<TOps, TV>(j, part, scratch, 10, a22); Pass<TOps, TV>(j, part, scratch, 14, a23);
                Pass<TOps, TV>(j, part, scratch, 3, a30); Pass<TOps, TV>(j, part, scratch, 7, a31); Pass<TOps, TV>(j, part, scratch, 11, a32); Pass<TOps, TV>(j, part, scratch, 15, a33);
            }
            FinishTile<TOps, TV, TRow>(scratch, 4, w, g, count, xt, yt, s, summed: RegisterSums<TV>());
        }

        /// <summary>4 rows × 2 tokens (the Vector256 tile: 8 accumulators + 2 activations + 1 weight of 16 registers).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x2<TOps, TV, TRow>(float* gp, int chunks, in WeightMatrix w, int g, int count, float* xt, float* yt, in Segment s, float* part, float* scratch)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes;
            float* x0 = xt + s.K0, x1 = x0 + s.Cols; // k-block start
            float* pw = gp;
            for (int j = 0; j < 4; j++)
            {
                TV a00 = TOps.Zero, a01 = TOps.Zero, a10 = TOps.Zero, a11 = TOps.Zero;
                TV a20 = TOps.Zero, a21 = TOps.Zero, a30 = TOps.Zero, a31 = TOps.Zero;
                for (int c = j; c < chunks; c += 4, pw += 4 * L)
                {
                    int k = c * L;
                    TV xv0 = TOps.Load(x0 + k), xv1 = TOps.Load(x1 + k);
                    TV wv = TOps.Load(pw);
                    a00 = TOps.Fma(wv, xv0, a00); a01 = TOps.Fma(wv, xv1, a01);
                    wv = TOps.Load(pw + L);
                    a10 = TOps.Fma(wv, xv0, a10); a11 = TOps.Fma(wv, xv1, a11);
                    wv = TOps.Load(pw + 2 * L);
                    a20 = TOps.Fma(wv, xv0, a20); a21 = TOps.Fma(wv, xv1, a21);
                    wv = TOps.Load(pw + 3 * L);
                    a30 = TOps.Fma(wv, xv0, a30); a31 = TOps.Fma(wv, xv1, a31);
                }
                // Output index = token · 4 + row.
                Pass<TOps, TV>(j, part, scratch, 0, a00); Pass<TOps, TV>(j, part, scratch, 4, a01); Pass<TOps, TV>(j, part, scratch, 1, a10); Pass<TOps, TV>(j, part, scratch, 5, a11);
                Pass<TOps, TV>(j, part, scratch, 2, a20); Pass<TOps, TV>(j, part, scratch, 6, a21); Pass<TOps, TV>(j, part, scratch, 3, a30); Pass<TOps, TV>(j, part, scratch, 7, a31);
            }
            FinishTile<TOps, TV, TRow>(scratch, 2, w, g, count, xt, yt, s);
        }

        /// <summary>4 rows × 1 token (tokens left over after the tiles).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile4x1<TOps, TV, TRow>(float* gp, int chunks, in WeightMatrix w, int g, int count, float* xt, float* yt, in Segment s, float* part, float* scratch)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes;
            float* pw = gp, x0 = xt + s.K0;
            for (int j = 0; j < 4; j++)
            {
                TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
                for (int c = j; c < chunks; c += 4, pw += 4 * L)
                {
                    TV xv = TOps.Load(x0 + c * L);
                    a0 = TOps.Fma(TOps.Load(pw), xv, a0);
                    a1 = TOps.Fma(TOps.Load(pw + L), xv, a1);
                    a2 = TOps.Fma(TOps.Load(pw + 2 * L), xv, a2);
                    a3 = TOps.Fma(TOps.Load(pw + 3 * L), xv, a3);
                }
                Pass<TOps, TV>(j, part, scratch, 0, a0); Pass<TOps, TV>(j, part, scratch, 1, a1);
                Pass<TOps, TV>(j, part, scratch, 2, a2); Pass<TOps, TV>(j, part, scratch, 3, a3);
            }
            FinishTile<TOps, TV, TRow>(scratch, 1, w, g, count, xt, yt, s);
        }

        /// <summary>
        /// Folds pass <paramref name="j"/>'s accumulator of one output into the reduction order as the passes finish:
        /// pass 0 is stored, pass 1 added to it (p0 + p1), pass 2 stored, pass 3 added to it and to p0 + p1 —
        /// <c>(p0 + p1) + (p2 + p3)</c>, decode's order — into <paramref name="scratch"/> (vector per output, the
        /// layout <see cref="IVectorOps{TV}.SumEach"/> reads).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Pass<TOps, TV>(int j, float* part, float* scratch, int output, TV a)
            where TOps : IVectorOps<TV> where TV : struct
        {
            int L = TOps.Lanes;
            float* p01 = part + output * L, p2 = part + (16 + output) * L;
            if (j == 0) TOps.Store(p01, a);
            else if (j == 1) TOps.Store(p01, TOps.Add(TOps.Load(p01), a));
            else if (j == 2) TOps.Store(p2, a);
            else TOps.Store(scratch + output * L, TOps.Add(TOps.Load(p01), TOps.Add(TOps.Load(p2), a)));
        }

        /// <summary>The 4 × 4 tile reduces its last pass from registers (Vector512 with AVX-512: 16 outputs = 16 lanes).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool RegisterSums<TV>() where TV : struct => typeof(TV) == typeof(Vector512<float>) && Avx512F.IsSupported;

        /// <summary>Pass 3 of <see cref="Pass{TOps, TV}"/> returned instead of stored: <c>(p0 + p1) + (p2 + p3)</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Last<TOps, TV>(float* part, int output, TV a) where TOps : IVectorOps<TV> where TV : struct
        {
            int L = TOps.Lanes;
            TV v = TOps.Add(TOps.Load(part + output * L), TOps.Add(TOps.Load(part + (16 + output) * L), a));
            return Unsafe.As<TV, Vector512<float>>(ref v);
        }

        /// <summary>
        /// Reduces the combined vectors of a 4-row × <paramref name="tokens"/> tile (output index token · 4 + row, see
        /// <see cref="Pass{TOps, TV}"/>) with <see cref="IVectorOps{TV}.SumEach"/> — Lanes outputs at once,
        /// bit-identical to decode's <c>Sum</c> — and adds the block values to y; padding rows (≥ <paramref name="count"/>)
        /// are dropped. A full group without a scalar column tail updates each token's 4 consecutive outputs with one
        /// 4-float vector. <paramref name="summed"/>: the tile already wrote the sums (<see cref="RegisterSums{TV}"/>).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void FinishTile<TOps, TV, TRow>(float* scratch, int tokens, in WeightMatrix w, int g, int count, float* xt, float* yt, in Segment s, bool summed = false)
            where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
        {
            int L = TOps.Lanes, outputs = 4 * tokens;
            float* sums = scratch + 16 * 16;
            if (!summed)
            {
                for (int o = outputs; o % L != 0; o++) TOps.Store(scratch + o * L, TOps.Zero); // pad the last group
                for (int o0 = 0; o0 < outputs; o0 += L) TOps.SumEach(scratch + o0 * L, sums + o0);
            }
            if (count == 4 && !(s.Last && s.Vec < s.Cols))
            {
                for (int t = 0; t < tokens; t++)
                {
                    float* dst = yt + (long)t * s.Rows + g;
                    Vector128<float> v = Vector128.Load(sums + 4 * t);
                    if (!s.First) v = Vector128.Load(dst) + v;
                    v.Store(dst);
                }
                return;
            }
            for (int i = 0; i < count; i++)
            {
                byte* row = w.Row(g + i);
                for (int t = 0; t < tokens; t++)
                    Finish<TRow>(yt + (long)t * s.Rows + g + i, sums[4 * t + i], s, row, xt + (long)t * s.Cols);
            }
        }
    }

    /// <summary>
    /// Tokens from which <see cref="MatMul.Linear"/> unpacks weight panels (below: decode straight from the rows).
    /// From 2 on: the decode path re-reads the whole matrix for every token (2× the DRAM traffic for a large matrix at
    /// n = 2), the GEMM reads it once.
    /// </summary>
    internal const int GemmMinTokens = 2;

    /// <summary>
    /// Per-thread float32 scratch for unpacked weight panels, 64-byte aligned, grown once and reused (no allocation
    /// per call in steady state). Pinned (POH) so the raw pointer stays valid; freed with the thread.
    /// </summary>
    private static class PanelScratch
    {
        [ThreadStatic] private static float[]? t_buffer;

        public static float* Get(int floats)
        {
            float[]? buffer = t_buffer;
            // One size (288 KB) covers every float panel (64 rows × k-block ≤ MaxKBlock) and Q8_0 panels up to 23 000
            // columns, so a thread allocates once whatever mix of layers it meets.
            if (buffer is null || buffer.Length < floats + 16)
                t_buffer = buffer = GC.AllocateUninitializedArray<float>(Math.Max(floats, FloatKernels.PanelRows * MaxKBlock) + 16, pinned: true);
            nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
            return (float*)((p + 63) & ~(nint)63);
        }
    }
}
