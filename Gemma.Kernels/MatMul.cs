using System.Runtime.InteropServices;

namespace Gemma.Kernels;

/// <summary>
/// Linear layers over <see cref="WeightMatrix"/> weights: <c>y[n, rows] = x[n, cols] · Wᵀ</c>.
/// n = 1 is decode (matrix × vector, memory-bound); n &gt; 1 is prefill (matrix × matrix, compute-bound).
/// </summary>
public static unsafe class MatMul
{
    /// <summary>
    /// Computes <c>y[i, r] = Σ_c x[i, c] · W[r, c]</c> for <c>i &lt; n</c>, accumulating in float32.
    /// </summary>
    /// <param name="w">Weights <c>[rows, cols]</c>.</param>
    /// <param name="x">Activations <c>[n, cols]</c>, row-major.</param>
    /// <param name="y">Output <c>[n, rows]</c>, row-major; overwritten.</param>
    /// <param name="n">Number of activation rows (tokens).</param>
    /// <param name="pool">Workers to split the output rows over; null runs on the calling thread.</param>
    public static void Linear(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool? pool = null)
    {
        CheckShapes(w, x, y, n);
        LinearScalar(w, x, y, n, 0, w.Rows);
    }

    internal static void CheckShapes(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (x.Length < (long)n * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, need {n}×{w.Cols}.", nameof(x));
        if (y.Length < (long)n * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, need {n}×{w.Rows}.", nameof(y));
    }

    /// <summary>Plain scalar reference for output rows [<paramref name="rowStart"/>, <paramref name="rowEnd"/>).</summary>
    internal static void LinearScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n, int rowStart, int rowEnd)
    {
        int cols = w.Cols;
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = w.Row(r);
            for (int i = 0; i < n; i++)
            {
                ReadOnlySpan<float> xi = x.Slice(i * cols, cols);
                y[i * w.Rows + r] = DotScalar(w.Type, row, xi);
            }
        }
    }

    /// <summary>Scalar dot product of one encoded weight row with a float32 vector.</summary>
    internal static float DotScalar(WeightType type, byte* row, ReadOnlySpan<float> x)
    {
        float sum = 0;
        switch (type)
        {
            case WeightType.F32:
                {
                    var wr = new ReadOnlySpan<float>(row, x.Length);
                    for (int c = 0; c < x.Length; c++) sum += wr[c] * x[c];
                    break;
                }
            case WeightType.BF16:
                {
                    var wr = new ReadOnlySpan<ushort>(row, x.Length);
                    for (int c = 0; c < x.Length; c++) sum += BFloat16.ToSingle(wr[c]) * x[c];
                    break;
                }
            case WeightType.Q8_0:
                {
                    int blocks = x.Length / Q8_0.BlockSize;
                    for (int b = 0; b < blocks; b++)
                    {
                        byte* block = row + b * Q8_0.BlockBytes;
                        float d = (float)BitConverter.UInt16BitsToHalf(*(ushort*)block);
                        var qs = new ReadOnlySpan<sbyte>(block + 2, Q8_0.BlockSize);
                        float blockSum = 0;
                        for (int j = 0; j < Q8_0.BlockSize; j++) blockSum += qs[j] * x[b * Q8_0.BlockSize + j];
                        sum += d * blockSum;
                    }
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
        return sum;
    }
}
