namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
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

    /// <summary>Pointer form of <see cref="LinearScalar"/>, the fallback when no SIMD width is accelerated.</summary>
    private static void LinearScalarRange(in WeightMatrix w, float* x, float* y, int n, int rowStart, int rowEnd)
        => LinearScalar(w, new ReadOnlySpan<float>(x, n * w.Cols), new Span<float>(y, n * w.Rows), n, rowStart, rowEnd);

    /// <summary>Scalar dot product of one encoded weight row with a float32 vector (Q8_0: dequantized, no activation quantization).</summary>
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
