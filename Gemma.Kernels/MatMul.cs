using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Linear layers over <see cref="WeightMatrix"/> weights: <c>y[n, rows] = x[n, cols] · Wᵀ</c>.
/// n = 1 is decode (matrix × vector, memory-bound); n &gt; 1 is prefill (matrix × matrix, compute-bound).
/// </summary>
/// <remarks>
/// Numerics: F32 and BF16 weights are widened exactly to float32 and every output element is a float32
/// accumulation (16 or 8 SIMD lanes, reduced in a fixed order). Each element is computed by one thread with a kernel
/// chosen by its token index and the row count only, so results are bit-identical for any pool size.
/// Q8_0 weights are multiplied with activations quantized per 32-block to int8, as llama.cpp does
/// (<c>MatMul.Q8.cs</c>): exact integer block dot products, float32 scales; this adds the activation rounding error.
/// The hot kernels are <c>[MethodImpl(AggressiveOptimization)]</c>: fully optimized at first call instead of going
/// through Tier0/OSR (under BenchmarkDotNet in-process the unoptimized Q8_0 versions were observed to persist, 4–6× slower).
/// Files: <c>MatMul.cs</c> dispatch and threading, <c>MatMul.Scalar.cs</c> references, <c>MatMul.V512.cs</c> /
/// <c>MatMul.V256.cs</c> float kernels, <c>MatMul.Q8*.cs</c> the int8 path.
/// </remarks>
internal static unsafe partial class MatMul
{
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
        if (n == 0 || w.Rows == 0) return;
        if (w.Cols == 0) { y.Slice(0, n * w.Rows).Clear(); return; }

        fixed (float* px = x)
        fixed (float* py = y)
        {
            var work = new LinearWork(w, px, py, n, pool?.Threads ?? 1);
            if (UsesInt8Activations(w.Type))
            {
                // Quantize the activations once on the calling thread; the workers share them read-only.
                Q8Activations.Rent(n, w.Cols, out work.QuantizedX, out work.XScales, out work.XSums);
                QuantizeActivations(px, n, w.Cols, work.QuantizedX, work.XScales);
                if (w.Type is WeightType.Q4_K or WeightType.Q5_K) BlockSums(work.QuantizedX, work.XScales, n * (w.Cols / Q8_0.BlockSize), work.XSums);
            }
            if (pool is null || pool.Threads == 1 || (long)w.Rows * w.Cols * n < ParallelThreshold)
            {
                // Same row chunks as the pool would use: for prefill a chunk's weights × one k-block stay in L2
                // while every token tile passes over them.
                for (int i = 0; i < work.Items; i++) work.Execute(i);
            }
            else
                pool.For(work.Items, ref work);
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
        public float* XSums;        // Q4_K/Q5_K only: [n, cols / 32] dx · Σ qx per block (the minimums' factor)

        public LinearWork(in WeightMatrix w, float* x, float* y, int n, int threads)
        {
            W = w; X = x; Y = y; N = n;
            // About 8 items per thread for load balance on a shared machine, 16..512 rows each.
            int chunk = (w.Rows / (threads * 8) + 15) & ~15;
            ChunkRows = Math.Clamp(chunk, 16, 512);
            Items = (w.Rows + ChunkRows - 1) / ChunkRows;
            QuantizedX = null; XScales = null; XSums = null;
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
                case WeightType.Q4_0: RunQuant<Q4_0Dot>(W, QuantizedX, XScales, XSums, Y, N, r0, r1); break;
                case WeightType.Q4_K: RunQuant<Q4_KDot>(W, QuantizedX, XScales, XSums, Y, N, r0, r1); break;
                case WeightType.Q5_K: RunQuant<Q5_KDot>(W, QuantizedX, XScales, XSums, Y, N, r0, r1); break;
                case WeightType.Q6_K: RunQuant<Q6_KDot>(W, QuantizedX, XScales, XSums, Y, N, r0, r1); break;
                default: throw new ArgumentOutOfRangeException(nameof(W), W.Type, "Unknown weight type.");
            }
        }

        private readonly void RunFloat<TRow>(int r0, int r1) where TRow : IRowFormat
        {
            if (Vector512.IsHardwareAccelerated) V512.Range<TRow>(W, X, Y, N, r0, r1);
            else if (Vector256.IsHardwareAccelerated) V256.Range<TRow>(W, X, Y, N, r0, r1);
            else LinearScalarRange(W, X, Y, N, r0, r1);
        }
    }

    /// <summary>
    /// Splits [0, vecCols) into blocks of at most 1024 columns (multiples of <paramref name="step"/>)
    /// so that a tile of activations stays in L1 while it is reused over many weight rows (prefill). Decode (n &lt; 4)
    /// uses one block so each weight row is one long sequential stream for the prefetcher.
    /// </summary>
    internal static int KBlockSize(int vecCols, int n, int step)
    {
        const int KBlock = 1024;
        if (n < 4 || vecCols <= KBlock) return Math.Max(vecCols, step);
        int blocks = (vecCols + KBlock - 1) / KBlock;
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
    internal readonly struct Segment(int k0, int k1, int vec, int cols, int rows, bool first, bool last)
    {
        public readonly int K0 = k0, K1 = k1, Vec = vec, Cols = cols, Rows = rows;
        /// <summary>First k-block: overwrite the output instead of adding to it.</summary>
        public readonly bool First = first;
        /// <summary>Last k-block: also add the scalar tail [Vec, Cols).</summary>
        public readonly bool Last = last;
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
