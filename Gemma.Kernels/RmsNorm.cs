namespace Gemma.Kernels;

/// <summary>Root-mean-square normalisation: <c>y = x / sqrt(mean(x²) + eps) · scale</c>, per row.</summary>
public static class RmsNorm
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
            float sumSquares = 0;
            for (int i = 0; i < dim; i++) sumSquares += xr[i] * xr[i];
            float inv = 1f / MathF.Sqrt(sumSquares / dim + eps);
            for (int i = 0; i < dim; i++) yr[i] = xr[i] * inv * scale[i];
        }
    }
}
