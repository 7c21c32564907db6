using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Rotary position embedding in the "rotate half" pairing used by Hugging Face Llama/Gemma:
/// element i is rotated together with element i + d/2 (not with its neighbour i + 1 as in the GPT-J/GGML-"normal" layout).
/// </summary>
internal static unsafe class Rope
{
    /// <summary>
    /// Inverse frequencies <c>1 / theta^(2i/d)</c> for i &lt; d/2, computed in float32 as the reference does
    /// (<c>arange(0, d, 2).float() / d</c>, then a float32 power).
    /// </summary>
    public static void InverseFrequencies(int dim, double theta, Span<float> invFreq)
    {
        if (dim <= 0 || dim % 2 != 0) throw new ArgumentException($"RoPE dimension must be positive and even, got {dim}.", nameof(dim));
        if (invFreq.Length < dim / 2) throw new ArgumentException("invFreq too short.", nameof(invFreq));
        for (int i = 0; i < dim / 2; i++)
        {
            float exponent = (float)(2 * i) / dim;
            invFreq[i] = 1f / MathF.Pow((float)theta, exponent);
        }
    }

    /// <summary>cos/sin of <c>position · invFreq[i]</c>; the angle is a float32 product, as in the reference.</summary>
    public static void CosSin(int position, ReadOnlySpan<float> invFreq, Span<float> cos, Span<float> sin)
    {
        for (int i = 0; i < invFreq.Length; i++)
        {
            float angle = position * invFreq[i];
            cos[i] = (float)Math.Cos(angle);
            sin[i] = (float)Math.Sin(angle);
        }
    }

    /// <summary>
    /// Rotates every head of <paramref name="x"/> (<c>[heads, headDim]</c>) in place:
    /// <c>x1' = x1·cos − x2·sin, x2' = x2·cos + x1·sin</c> with x1 = first half, x2 = second half.
    /// <paramref name="cos"/> and <paramref name="sin"/> hold headDim/2 values for this position.
    /// </summary>
    public static void ApplyRotateHalf(Span<float> x, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        if (headDim % 2 != 0 || x.Length % headDim != 0) throw new ArgumentException("x is not [heads, headDim] with an even headDim.", nameof(x));
        if (cos.Length < half || sin.Length < half) throw new ArgumentException("cos/sin need headDim/2 values.");
        for (int h = 0; h < x.Length; h += headDim)
            RotateHead(x.Slice(h, half), x.Slice(h + half, half), cos, sin);
    }

    /// <summary>
    /// One head: same operations in the same order as <see cref="ApplyRotateHalfScalar"/> (no FMA contraction),
    /// so every width is bit-identical to the scalar reference.
    /// </summary>
    private static void RotateHead(Span<float> x1, Span<float> x2, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        fixed (float* p1 = x1)
        fixed (float* p2 = x2)
        fixed (float* pc = cos)
        fixed (float* ps = sin)
        {
            int n = x1.Length;
            int i = Vector512.IsHardwareAccelerated ? RotateHead<Ops512, Vector512<float>>(p1, p2, pc, ps, n)
                  : Vector256.IsHardwareAccelerated ? RotateHead<Ops256, Vector256<float>>(p1, p2, pc, ps, n)
                  : Vector128.IsHardwareAccelerated ? RotateHead<Ops128, Vector128<float>>(p1, p2, pc, ps, n)
                  : 0;
            for (; i < n; i++)
            {
                float a = p1[i], b = p2[i];
                p1[i] = a * pc[i] - b * ps[i];
                p2[i] = b * pc[i] + a * ps[i];
            }
        }
    }

    /// <summary>The whole vectors of one head; returns where the scalar tail starts.</summary>
    private static int RotateHead<TOps, TV>(float* x1, float* x2, float* cos, float* sin, int n) where TOps : IVectorOps<TV> where TV : struct
    {
        int i = 0, L = TOps.Lanes;
        for (; i + L <= n; i += L)
        {
            TV a = TOps.Load(x1 + i), b = TOps.Load(x2 + i), c = TOps.Load(cos + i), s = TOps.Load(sin + i);
            TOps.Store(x1 + i, TOps.Subtract(TOps.Multiply(a, c), TOps.Multiply(b, s)));
            TOps.Store(x2 + i, TOps.Add(TOps.Multiply(b, c), TOps.Multiply(a, s)));
        }
        return i;
    }

    /// <summary>Scalar reference of <see cref="ApplyRotateHalf"/>.</summary>
    internal static void ApplyRotateHalfScalar(Span<float> x, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        for (int h = 0; h < x.Length; h += headDim)
        {
            Span<float> x1 = x.Slice(h, half);
            Span<float> x2 = x.Slice(h + half, half);
            for (int i = 0; i < half; i++)
            {
                float a = x1[i], b = x2[i];
                x1[i] = a * cos[i] - b * sin[i];
                x2[i] = b * cos[i] + a * sin[i];
            }
        }
    }
}
