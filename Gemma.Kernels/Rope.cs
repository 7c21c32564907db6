using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Rotary position embedding in the "rotate half" pairing used by Hugging Face Llama/Gemma:
/// element i is rotated together with element i + d/2 (not with its neighbour i + 1 as in the GPT-J/GGML-"normal" layout).
/// </summary>
internal static class Rope
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
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= x1.Length; i += 16)
            {
                var a = Vector512.Create(x1.Slice(i, 16)); var b = Vector512.Create(x2.Slice(i, 16));
                var c = Vector512.Create(cos.Slice(i, 16)); var s = Vector512.Create(sin.Slice(i, 16));
                (a * c - b * s).CopyTo(x1.Slice(i, 16));
                (b * c + a * s).CopyTo(x2.Slice(i, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= x1.Length; i += 8)
            {
                var a = Vector256.Create(x1.Slice(i, 8)); var b = Vector256.Create(x2.Slice(i, 8));
                var c = Vector256.Create(cos.Slice(i, 8)); var s = Vector256.Create(sin.Slice(i, 8));
                (a * c - b * s).CopyTo(x1.Slice(i, 8));
                (b * c + a * s).CopyTo(x2.Slice(i, 8));
            }
        }
        for (; i < x1.Length; i++)
        {
            float a = x1[i], b = x2[i];
            x1[i] = a * cos[i] - b * sin[i];
            x2[i] = b * cos[i] + a * sin[i];
        }
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
