using System.Numerics;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Vectorized <see cref="Activations.ArgMax"/> in two passes: the maximum over non-NaN values (NaN lanes replaced by
/// −∞; max is exact so the order does not matter), then the first index holding it. Ties and ±0 behave as the scalar
/// reference: it keeps the first element that is not smaller than all before it, and −0 == +0 compares equal.
/// </summary>
internal static class ArgMaxVector
{
    public static int Find512(ReadOnlySpan<float> x)
    {
        var ninf = Vector512.Create(float.NegativeInfinity);
        var m = ninf;
        int i = 0;
        for (; i + 16 <= x.Length; i += 16)
        {
            var v = Vector512.Create(x.Slice(i, 16));
            m = Vector512.Max(m, Vector512.ConditionalSelect(Vector512.Equals(v, v), v, ninf));
        }
        float max = float.NegativeInfinity;
        for (int l = 0; l < 16; l++) max = MathF.Max(max, m[l]);
        for (; i < x.Length; i++) if (x[i] > max) max = x[i];

        var target = Vector512.Create(max);
        for (i = 0; i + 16 <= x.Length; i += 16)
        {
            ulong hits = Vector512.Equals(Vector512.Create(x.Slice(i, 16)), target).ExtractMostSignificantBits();
            if (hits != 0) return i + BitOperations.TrailingZeroCount(hits);
        }
        return FirstIndexOf(x, i, max);
    }

    public static int Find256(ReadOnlySpan<float> x)
    {
        var ninf = Vector256.Create(float.NegativeInfinity);
        var m = ninf;
        int i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var v = Vector256.Create(x.Slice(i, 8));
            m = Vector256.Max(m, Vector256.ConditionalSelect(Vector256.Equals(v, v), v, ninf));
        }
        float max = float.NegativeInfinity;
        for (int l = 0; l < 8; l++) max = MathF.Max(max, m[l]);
        for (; i < x.Length; i++) if (x[i] > max) max = x[i];

        var target = Vector256.Create(max);
        for (i = 0; i + 8 <= x.Length; i += 8)
        {
            uint hits = Vector256.Equals(Vector256.Create(x.Slice(i, 8)), target).ExtractMostSignificantBits();
            if (hits != 0) return i + BitOperations.TrailingZeroCount(hits);
        }
        return FirstIndexOf(x, i, max);
    }

    /// <summary>Scalar remainder of the second pass; −1 when max stayed −∞ only because everything was NaN.</summary>
    private static int FirstIndexOf(ReadOnlySpan<float> x, int from, float max)
    {
        for (int i = from; i < x.Length; i++) if (x[i] == max) return i;
        return -1;
    }
}
