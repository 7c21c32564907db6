using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>Root-mean-square normalisation: <c>y = x / sqrt(mean(x²) + eps) · scale</c>, per row.</summary>
internal static unsafe class RmsNorm
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

    /// <summary>Σ x² in float32: 4 vector accumulators (16, 8 or 4 lanes each), then the scalar tail.</summary>
    internal static float SumOfSquares(ReadOnlySpan<float> x)
    {
        fixed (float* p = x)
        {
            if (Vector512.IsHardwareAccelerated) return SumOfSquares<Ops512, Vector512<float>>(p, x.Length);
            if (Vector256.IsHardwareAccelerated) return SumOfSquares<Ops256, Vector256<float>>(p, x.Length);
            if (Vector128.IsHardwareAccelerated) return SumOfSquares<Ops128, Vector128<float>>(p, x.Length);
            return Tail(p, 0, x.Length, 0);
        }
    }

    private static float SumOfSquares<TOps, TV>(float* x, int n) where TOps : IVectorOps<TV> where TV : struct
    {
        int i = 0, L = TOps.Lanes;
        TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        for (; i + 4 * L <= n; i += 4 * L)
        {
            TV v0 = TOps.Load(x + i), v1 = TOps.Load(x + i + L), v2 = TOps.Load(x + i + 2 * L), v3 = TOps.Load(x + i + 3 * L);
            a0 = TOps.Fma(v0, v0, a0); a1 = TOps.Fma(v1, v1, a1);
            a2 = TOps.Fma(v2, v2, a2); a3 = TOps.Fma(v3, v3, a3);
        }
        for (; i + L <= n; i += L) { TV v = TOps.Load(x + i); a0 = TOps.Fma(v, v, a0); }
        return Tail(x, i, n, TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3))));
    }

    private static float Tail(float* x, int i, int n, float sum)
    {
        for (; i < n; i++) sum += x[i] * x[i];
        return sum;
    }

    /// <summary><c>y = (x · inv) · scale</c>, the scalar reference's operation order, so it is exact in every width.</summary>
    private static void Scale(ReadOnlySpan<float> x, float inv, ReadOnlySpan<float> scale, Span<float> y)
    {
        fixed (float* px = x)
        fixed (float* ps = scale)
        fixed (float* py = y)
        {
            int i = Vector512.IsHardwareAccelerated ? Scale<Ops512, Vector512<float>>(px, inv, ps, py, x.Length)
                  : Vector256.IsHardwareAccelerated ? Scale<Ops256, Vector256<float>>(px, inv, ps, py, x.Length)
                  : Vector128.IsHardwareAccelerated ? Scale<Ops128, Vector128<float>>(px, inv, ps, py, x.Length)
                  : 0;
            for (; i < x.Length; i++) py[i] = px[i] * inv * ps[i];
        }
    }

    /// <summary>The whole vectors of <see cref="Scale(ReadOnlySpan{float}, float, ReadOnlySpan{float}, Span{float})"/>; returns where the tail starts.</summary>
    private static int Scale<TOps, TV>(float* x, float inv, float* scale, float* y, int n) where TOps : IVectorOps<TV> where TV : struct
    {
        int i = 0, L = TOps.Lanes;
        TV vi = TOps.Create(inv);
        for (; i + L <= n; i += L) TOps.Store(y + i, TOps.Multiply(TOps.Multiply(TOps.Load(x + i), vi), TOps.Load(scale + i)));
        return i;
    }
}
