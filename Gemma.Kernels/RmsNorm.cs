using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>Root-mean-square normalisation: <c>y = x / sqrt(mean(x²) + eps) · scale</c>, per row.</summary>
internal static class RmsNorm
{
    /// <summary>
    /// Normalises each of the <c>x.Length / scale.Length</c> rows of <paramref name="x"/> into <paramref name="y"/>
    /// (which may alias <paramref name="x"/>). The caller folds any model-specific offset (Gemma's 1 + w) into
    /// <paramref name="scale"/>.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> scale, float eps, Span<float> y)
    {
        int dim = scale.Length;
        if (dim == 0 || x.Length % dim != 0) throw new ArgumentException($"x length {x.Length} is not a multiple of {dim}.", nameof(x));
        if (y.Length < x.Length) throw new ArgumentException("y is shorter than x.", nameof(y));
        for (int row = 0; row < x.Length; row += dim)
        {
            ReadOnlySpan<float> xr = x.Slice(row, dim);
            Span<float> yr = y.Slice(row, dim);
            float inv = 1f / MathF.Sqrt(SumOfSquares(xr) / dim + eps);
            Scale(xr, inv, scale, yr);
        }
    }

    /// <summary>Σ x² in float32: 4 vector accumulators (16 or 8 lanes each), then the scalar tail.</summary>
    internal static float SumOfSquares(ReadOnlySpan<float> x)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= x.Length; i += 64)
            {
                var v0 = Vector512.Create(x.Slice(i, 16)); var v1 = Vector512.Create(x.Slice(i + 16, 16));
                var v2 = Vector512.Create(x.Slice(i + 32, 16)); var v3 = Vector512.Create(x.Slice(i + 48, 16));
                a0 = Vector512.FusedMultiplyAdd(v0, v0, a0); a1 = Vector512.FusedMultiplyAdd(v1, v1, a1);
                a2 = Vector512.FusedMultiplyAdd(v2, v2, a2); a3 = Vector512.FusedMultiplyAdd(v3, v3, a3);
            }
            for (; i + 16 <= x.Length; i += 16) { var v = Vector512.Create(x.Slice(i, 16)); a0 = Vector512.FusedMultiplyAdd(v, v, a0); }
            sum = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= x.Length; i += 32)
            {
                var v0 = Vector256.Create(x.Slice(i, 8)); var v1 = Vector256.Create(x.Slice(i + 8, 8));
                var v2 = Vector256.Create(x.Slice(i + 16, 8)); var v3 = Vector256.Create(x.Slice(i + 24, 8));
                a0 = Vector256.FusedMultiplyAdd(v0, v0, a0); a1 = Vector256.FusedMultiplyAdd(v1, v1, a1);
                a2 = Vector256.FusedMultiplyAdd(v2, v2, a2); a3 = Vector256.FusedMultiplyAdd(v3, v3, a3);
            }
            for (; i + 8 <= x.Length; i += 8) { var v = Vector256.Create(x.Slice(i, 8)); a0 = Vector256.FusedMultiplyAdd(v, v, a0); }
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < x.Length; i++) sum += x[i] * x[i];
        return sum;
    }

    /// <summary><c>y = (x · inv) · scale</c>, the scalar reference's operation order, so it is exact in every width.</summary>
    private static void Scale(ReadOnlySpan<float> x, float inv, ReadOnlySpan<float> scale, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vi = Vector512.Create(inv);
            for (; i + 16 <= x.Length; i += 16)
                (Vector512.Create(x.Slice(i, 16)) * vi * Vector512.Create(scale.Slice(i, 16))).CopyTo(y.Slice(i, 16));
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vi = Vector256.Create(inv);
            for (; i + 8 <= x.Length; i += 8)
                (Vector256.Create(x.Slice(i, 8)) * vi * Vector256.Create(scale.Slice(i, 8))).CopyTo(y.Slice(i, 8));
        }
        for (; i < x.Length; i++) y[i] = x[i] * inv * scale[i];
    }
}
