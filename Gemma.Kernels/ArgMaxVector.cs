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
    public static unsafe int Find<TOps, TV>(ReadOnlySpan<float> x) where TOps : IVectorOps<TV> where TV : struct
    {
        int L = TOps.Lanes, i = 0;
        float max = float.NegativeInfinity;
        fixed (float* p = x)
        {
            TV m = TOps.Create(float.NegativeInfinity);
            for (; i + L <= x.Length; i += L) m = TOps.MaxIgnoringNaN(m, TOps.Load(p + i));
            float* lanes = stackalloc float[16];
            TOps.Store(lanes, m);
            for (int l = 0; l < L; l++) max = MathF.Max(max, lanes[l]);
            for (; i < x.Length; i++) if (p[i] > max) max = p[i];

            TV target = TOps.Create(max);
            for (i = 0; i + L <= x.Length; i += L)
            {
                ulong hits = TOps.EqualsMask(TOps.Load(p + i), target);
                if (hits != 0) return i + BitOperations.TrailingZeroCount(hits);
            }
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
