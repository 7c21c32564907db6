using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Linear layers over <see cref="WeightMatrix"/> weights: <c>y[n, rows] = x[n, cols] · Wᵀ</c>.
/// n = 1 is decode (matrix × vector, memory-bound); n &gt; 1 is prefill (matrix × matrix, compute-bound).
/// </summary>
/// <remarks>
/// Numerics: F32 and BF16 weights are widened exactly to float32 and every output element is a float32
/// accumulation (16, 8 or 4 SIMD lanes) in one fixed reduction order per element (see <c>MatMul.Float.cs</c>), so results
/// are bit-identical for any pool size and any batch: a token's output does not depend on the other tokens
/// computed with it (batch invariance, which Q8_0 has as well).
/// Q8_0 weights are multiplied with activations quantized per 32-block to int8, as llama.cpp does
/// (<c>MatMul.Q8.cs</c>): exact integer block dot products, float32 scales; this adds the activation rounding error.
/// The hot kernels are <c>[MethodImpl(AggressiveOptimization)]</c>: fully optimized at first call instead of going
/// through Tier0/OSR (under BenchmarkDotNet in-process the unoptimized Q8_0 versions were observed to persist, 4–6× slower).
/// The kernel roots (<c>FloatKernels.Range/Decode/Gemm</c>, <c>RowsByTokens</c>, <c>Q8V512.Range</c>, <c>RunQ4_0</c>, <c>RunKQuant</c>) are
/// also <c>NoInlining</c>, so each is compiled as its own method with the JIT's whole inlining budget: otherwise a caller's
/// Tier1 recompile (e.g. <c>Linear2</c>, <c>Transformer.OutputHead</c>) inlines the row loop, runs out of budget and calls
/// the <c>Ops128.Fma</c> / <c>Bf16Row.Load128</c> of every 4 lanes out of line — seen on ARM64 (docs/arm64.md), where each
/// such call also saves and restores the upper halves of v8–v15.
/// Files: <c>MatMul.cs</c> dispatch and threading, <c>MatMul.Scalar.cs</c> references,
/// <c>MatMul.Float.cs</c> float kernels (decode and packed GEMM, over <c>VectorOps.cs</c>), <c>MatMul.Q8*.cs</c> the int8 path.
/// </remarks>
internal static unsafe partial class MatMul
{
    /// <summary>The longest k-block of the float reduction order (see <see cref="KBlockSize"/>).</summary>
    internal const int MaxKBlock = 1152;

    // Below this many multiply-adds a call is not worth waking the workers for (~10-20 µs).
    private const long ParallelThreshold = 1 << 17;

    /// <summary>
    /// Computes <c>y[i, r] = Σ_c x[i, c] · W[r, c]</c> for <c>i &lt; n</c>, accumulating in float32.
    /// </summary>
    /// <param name="w">Weights <c>[rows, cols]</c>.</param>
    /// <param name="x">Activations <c>[n, cols]</c>, row-major. Must not overlap <paramref name="y"/>.</param>
    /// <param name="y">Output <c>[n, rows]</c>, row-major; overwritten.</param>
    /// <param name="n">Number of activation rows (tokens).</param>
    /// <param name="pool">Workers to split the output rows over; null runs on the calling thread.</param>
    public static void Linear(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool? pool = null)
    {
        CheckShapes(w, x, y, n);
        fixed (float* px = x)
        fixed (float* py = y)
            Run(px, n, pool, 1, w, py, default, null, default, null);
    }

    /// <summary>
    /// Two <see cref="Linear"/> layers of the same input in one pool round-trip (e.g. the gate and up projections):
    /// <c>y0 = x·W0ᵀ</c>, <c>y1 = x·W1ᵀ</c>. Results are bit-identical to two separate calls.
    /// </summary>
    /// <param name="w0">First weights <c>[rows0, cols]</c>.</param>
    /// <param name="y0">First output <c>[n, rows0]</c>; must not overlap <paramref name="x"/> or <paramref name="y1"/>.</param>
    /// <param name="w1">Second weights <c>[rows1, cols]</c> (same column count).</param>
    /// <param name="y1">Second output <c>[n, rows1]</c>.</param>
    /// <param name="x">Activations <c>[n, cols]</c>.</param>
    /// <param name="n">Number of activation rows (tokens).</param>
    /// <param name="pool">Workers to split the output rows over; null runs on the calling thread.</param>
    public static void Linear2(in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1,
                               ReadOnlySpan<float> x, int n, WorkerPool? pool = null)
    {
        CheckShapes(w0, x, y0, n);
        CheckShapes(w1, x, y1, n);
        CheckSameColumns(w0, w1);
        fixed (float* px = x)
        fixed (float* p0 = y0)
        fixed (float* p1 = y1)
            Run(px, n, pool, 2, w0, p0, w1, p1, default, null);
    }

    /// <summary>
    /// Three <see cref="Linear"/> layers of the same input in one pool round-trip (e.g. the q, k and v projections);
    /// results are bit-identical to three separate calls. Parameters as in <see cref="Linear2"/>.
    /// </summary>
    /// <param name="w0">First weights.</param>
    /// <param name="y0">First output.</param>
    /// <param name="w1">Second weights (same column count).</param>
    /// <param name="y1">Second output.</param>
    /// <param name="w2">Third weights (same column count).</param>
    /// <param name="y2">Third output.</param>
    /// <param name="x">Activations <c>[n, cols]</c>.</param>
    /// <param name="n">Number of activation rows (tokens).</param>
    /// <param name="pool">Workers to split the output rows over; null runs on the calling thread.</param>
    public static void Linear3(in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1,
                               in WeightMatrix w2, Span<float> y2, ReadOnlySpan<float> x, int n, WorkerPool? pool = null)
    {
        CheckShapes(w0, x, y0, n);
        CheckShapes(w1, x, y1, n);
        CheckShapes(w2, x, y2, n);
        CheckSameColumns(w0, w1);
        CheckSameColumns(w0, w2);
        fixed (float* px = x)
        fixed (float* p0 = y0)
        fixed (float* p1 = y1)
        fixed (float* p2 = y2)
            Run(px, n, pool, 3, w0, p0, w1, p1, w2, p2);
    }

    private static void CheckSameColumns(in WeightMatrix a, in WeightMatrix b)
    {
        if (a.Cols != b.Cols) throw new ArgumentException($"Fused layers need the same input size, got {a.Cols} and {b.Cols}.");
    }

    /// <summary>The first <paramref name="count"/> of up to three layers of one input, as one pool call.</summary>
    private static void Run(float* x, int n, WorkerPool? pool, int count,
                            in WeightMatrix w0, float* y0, in WeightMatrix w1, float* y1, in WeightMatrix w2, float* y2)
    {
        int threads = pool?.Threads ?? 1;
        var work = new FusedWork(
            Prepare(w0, x, y0, n, threads),
            count > 1 ? Prepare(w1, x, y1, n, threads) : default,
            count > 2 ? Prepare(w2, x, y2, n, threads) : default);
        if (work.Items == 0) return;
        if (UsesInt8Activations(w0.Type) || (count > 1 && UsesInt8Activations(w1.Type)) || (count > 2 && UsesInt8Activations(w2.Type)))
        {
            // Quantize the activations once (the tokens split over the pool when there are many); the workers (and all
            // layers) share them read-only.
            Q8Activations.Rent(n, w0.Cols, out sbyte* q, out float* scales);
            var quantize = new QuantizeWork { X = x, Cols = w0.Cols, Q = q, Scales = scales };
            quantize.Run(n, pool);
            work.A.QuantizedX = work.B.QuantizedX = work.C.QuantizedX = q;
            work.A.XScales = work.B.XScales = work.C.XScales = scales;
        }
        if (UsesQ8KActivations(w0.Type) || (count > 1 && UsesQ8KActivations(w1.Type)) || (count > 2 && UsesQ8KActivations(w2.Type)))
        {
            // The K-quants' format (a scale per 256); a call mixing Q8_0/Q4_0 with K-quants quantizes x both ways.
            Q8KActivations.Rent(n, w0.Cols, out Q8K xk);
            var quantize = new QuantizeWork { X = x, Cols = w0.Cols, K = xk };
            quantize.Run(n, pool);
            work.A.XK = work.B.XK = work.C.XK = xk;
        }
        long madds = (long)n * w0.Cols * ((long)work.A.W.Rows + work.B.W.Rows + work.C.W.Rows);
        if (pool is null || pool.Threads == 1 || madds < ParallelThreshold)
        {
            // Same row chunks as the pool would use: for prefill a chunk's weights stay in L2 while the tokens pass.
            for (int i = 0; i < work.Items; i++) work.Execute(i);
        }
        else
            pool.For(work.Items, ref work);
    }

    /// <summary>
    /// The activations' quantization (Q8_0 when <see cref="Q"/> is set, else Q8_K into <see cref="K"/>), split into runs
    /// of whole tokens: every block is quantized on its own, so the split changes no bit. On the calling thread below
    /// <see cref="PoolElements"/> elements (a decode step's few thousand take microseconds, less than waking a worker).
    /// </summary>
    private struct QuantizeWork : IParallelWork
    {
        private const int PoolElements = 1 << 16;
        public float* X;
        public int Cols;
        public sbyte* Q;
        public float* Scales;
        public Q8K K;
        private int _tokens, _perItem;

        public void Run(int n, WorkerPool? pool)
        {
            _tokens = n;
            if (pool is null || pool.Threads == 1 || (long)n * Cols < PoolElements) { _perItem = n; Execute(0); return; }
            _perItem = (n + 2 * pool.Threads - 1) / (2 * pool.Threads);
            pool.For((n + _perItem - 1) / _perItem, ref this);
        }

        public readonly void Execute(int item)
        {
            int t0 = item * _perItem, count = Math.Min(_perItem, _tokens - t0);
            long offset = (long)t0 * Cols;
            if (Q != null) QuantizeActivations(X + offset, count, Cols, Q + offset, Scales + offset / Q8_0.BlockSize);
            else
            {
                Q8K k = K.Token(t0, Cols);
                QuantizeQ8K(X + offset, count * (Cols / QK), k.Q, k.D, k.BSums);
            }
        }
    }

    /// <summary>The work of one layer; empty (no items) when there is nothing to compute, after clearing y if cols = 0.</summary>
    private static LinearWork Prepare(in WeightMatrix w, float* x, float* y, int n, int threads)
    {
        if (n == 0 || w.Rows == 0) return default;
        if (w.Cols == 0) { new Span<float>(y, n * w.Rows).Clear(); return default; }
        return new LinearWork(w, x, y, n, threads);
    }

    /// <summary>Up to three layers' items as one index range: [0, A.Items) then B's, then C's.</summary>
    private struct FusedWork(LinearWork a, LinearWork b, LinearWork c) : IParallelWork
    {
        public LinearWork A = a, B = b, C = c;
        public readonly int Items => A.Items + B.Items + C.Items;

        public readonly void Execute(int index)
        {
            if (index < A.Items) A.Execute(index);
            else if ((index -= A.Items) < B.Items) B.Execute(index);
            else C.Execute(index - B.Items);
        }
    }

    internal static void CheckShapes(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (x.Length < (long)n * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, need {n}×{w.Cols}.", nameof(x));
        if (y.Length < (long)n * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, need {n}×{w.Rows}.", nameof(y));
    }

    /// <summary>
    /// One call's worth of work, split into items of <see cref="ChunkRows"/> output rows (all tokens each).
    /// Chunks are multiples of 16 rows, so the 4-row register tiles never straddle two threads.
    /// </summary>
    private struct LinearWork : IParallelWork
    {
        public readonly WeightMatrix W;
        public readonly float* X;
        public readonly float* Y;
        public readonly int N;
        public readonly int ChunkRows;
        public readonly int Items;
        public sbyte* QuantizedX;   // int8-activation types only: [n, cols] int8
        public float* XScales;      // int8-activation types only: [n, cols / 32]
        public Q8K XK;              // K-quants only: the Q8_K activations

        public LinearWork(in WeightMatrix w, float* x, float* y, int n, int threads)
        {
            W = w; X = x; Y = y; N = n;
            // About 8 items per thread for load balance on a shared machine, 16..512 rows each.
            int chunk = (w.Rows / (threads * 8) + 15) & ~15;
            ChunkRows = Math.Clamp(chunk, 16, 512);
            Items = (w.Rows + ChunkRows - 1) / ChunkRows;
            QuantizedX = null; XScales = null; XK = default;
        }

        public readonly void Execute(int index)
        {
            int r0 = index * ChunkRows;
            Run(r0, Math.Min(W.Rows, r0 + ChunkRows));
        }

        /// <summary>Output rows [r0, r1) for all tokens, with the widest available kernel.</summary>
        public readonly void Run(int r0, int r1)
        {
            switch (W.Type)
            {
                case WeightType.F32: RunFloat<F32Row>(r0, r1); break;
                case WeightType.BF16: RunFloat<Bf16Row>(r0, r1); break;
                case WeightType.Q8_0: RunQ8(W, QuantizedX, XScales, Y, N, r0, r1); break;
                case WeightType.Q4_0: RunQ4_0(W, QuantizedX, XScales, Y, N, r0, r1); break;
                case WeightType.Q4_K: RunKQuant<Q45_KDot<FlagFalse>>(W, XK, Y, N, r0, r1); break;
                case WeightType.Q5_K: RunKQuant<Q45_KDot<FlagTrue>>(W, XK, Y, N, r0, r1); break;
                case WeightType.Q6_K: RunKQuant<Q6_KDot>(W, XK, Y, N, r0, r1); break;
                default: throw new ArgumentOutOfRangeException(nameof(W), W.Type, "Unknown weight type.");
            }
        }

        private readonly void RunFloat<TRow>(int r0, int r1) where TRow : IRowFormat
        {
            if (Vector512.IsHardwareAccelerated) FloatKernels.Range<Ops512, Vector512<float>, TRow>(W, X, Y, N, r0, r1);
            else if (Vector256.IsHardwareAccelerated) FloatKernels.Range<Ops256, Vector256<float>, TRow>(W, X, Y, N, r0, r1);
            else if (Vector128.IsHardwareAccelerated) FloatKernels.Range<Ops128, Vector128<float>, TRow>(W, X, Y, N, r0, r1);
            else LinearScalarRange(W, X, Y, N, r0, r1);
        }
    }

    /// <summary>
    /// Splits [0, vecCols) into blocks of at most <see cref="MaxKBlock"/> columns (multiples of <paramref name="step"/>), the unit of
    /// the reduction order: each block's FMA chain is reduced to a scalar and the block sums are added in order.
    /// Depends on the column count only — never on the number of tokens — so a token's output is the same alone
    /// (decode) and inside any batch (batch invariance). In prefill a block of activations stays in L1.
    /// </summary>
    /// <remarks>
    /// 1152 columns: 2304 = 2 blocks, 9216 = 8, 2048 = 2 × 1024. A block's 4-token activation tile (18 KB) stays in L1;
    /// each block costs the GEMM one reduction per output, so longer blocks are faster up to that limit (1 thread, CPU
    /// time, bf16 n = 128: 1024 → 1152 gave 2048×2304 72–77 → 77–80 GFLOP/s; 1536 was slower on 2304×9216, 58–60).
    /// </remarks>
    internal static int KBlockSize(int vecCols, int step)
    {
        if (vecCols <= MaxKBlock) return Math.Max(vecCols, step);
        int blocks = (vecCols + MaxKBlock - 1) / MaxKBlock;
        return (vecCols / blocks + step - 1) / step * step;
    }

    /// <summary>Scalar dot over the columns [from, to) that did not fill a vector; same order in every kernel.</summary>
    internal static float TailDot<TRow>(byte* row, float* x, int from, int to) where TRow : IRowFormat
    {
        float sum = 0;
        for (int c = from; c < to; c++) sum += TRow.Load(row, c) * x[c];
        return sum;
    }

    /// <summary>The k-range [K0, K1) one tile call covers, and what the output needs around it.</summary>
    internal readonly struct Segment(int k0, int k1, int vec, int cols, int rows)
    {
        public readonly int K0 = k0, K1 = k1, Vec = vec, Cols = cols, Rows = rows;
        /// <summary>First k-block: overwrite the output instead of adding to it.</summary>
        public readonly bool First = k0 == 0;
        /// <summary>Last k-block: also add the scalar tail [Vec, Cols).</summary>
        public readonly bool Last = k1 == vec;
    }

    /// <summary>Stores one k-block's partial sum: <c>y = (first ? 0 : y) + partial (+ scalar tail on the last block)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Finish<TRow>(float* dst, float partial, in Segment s, byte* row, float* x) where TRow : IRowFormat
    {
        float v = s.First ? partial : *dst + partial;
        if (s.Last && s.Vec < s.Cols) v += TailDot<TRow>(row, x, s.Vec, s.Cols);
        *dst = v;
    }
}
