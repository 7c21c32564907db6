namespace Gemma.Kernels;

/// <summary>
/// Scaled dot-product attention for one query vector, in pieces so that a caller can attend over keys
/// stored in several contiguous segments (e.g. a ring buffer that wrapped):
/// <see cref="Scores"/> per segment, one <see cref="SoftmaxInPlace"/> over all scores, then
/// <see cref="AccumulateWeightedValues"/> per segment.
/// </summary>
public static class Attention
{
    /// <summary>
    /// <c>scores[j] = cap · tanh((q · keys[j]) · scale / cap)</c> for j &lt; count, or without the tanh when
    /// <paramref name="softCap"/> is 0. <paramref name="keys"/> is <c>[count, q.Length]</c>.
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int count, float scale, float softCap, Span<float> scores)
    {
        int d = q.Length;
        for (int j = 0; j < count; j++)
        {
            ReadOnlySpan<float> k = keys.Slice(j * d, d);
            float s = 0;
            for (int i = 0; i < d; i++) s += q[i] * k[i];
            s *= scale;
            if (softCap != 0) s = softCap * MathF.Tanh(s / softCap);
            scores[j] = s;
        }
    }

    /// <summary>Numerically stable softmax in place (max subtracted before exp), float32.</summary>
    public static void SoftmaxInPlace(Span<float> x)
    {
        if (x.IsEmpty) return;
        float max = float.NegativeInfinity;
        foreach (float v in x) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = 1f / sum;
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    /// <summary><c>output += Σ_j weights[j] · values[j]</c>; <paramref name="values"/> is <c>[weights.Length, output.Length]</c>.</summary>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, Span<float> output)
    {
        int d = output.Length;
        for (int j = 0; j < weights.Length; j++)
        {
            float w = weights[j];
            ReadOnlySpan<float> v = values.Slice(j * d, d);
            for (int i = 0; i < d; i++) output[i] += w * v[i];
        }
    }
}
