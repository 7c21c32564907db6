using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Scaled dot-product attention for one query vector, in pieces so that a caller can attend over keys
/// stored in several contiguous segments (e.g. a ring buffer that wrapped):
/// <see cref="Scores"/> per segment, one <see cref="SoftmaxInPlace"/> over all scores, then
/// <see cref="AccumulateWeightedValues"/> per segment. Each call is single-threaded; parallelize over heads
/// with <see cref="WorkerPool.For{T}"/>.
/// </summary>
internal static class Attention
{
    /// <summary>
    /// <c>scores[j] = cap · tanh((q · keys[j]) · scale / cap)</c> for j &lt; count, or without the tanh when
    /// <paramref name="softCap"/> is 0. <paramref name="keys"/> is <c>[count, q.Length]</c>.
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int count, float scale, float softCap, Span<float> scores)
    {
        int d = q.Length;
        if (keys.Length < (long)count * d || scores.Length < count) throw new ArgumentException("keys or scores too short.");
        if (!Vector256.IsHardwareAccelerated) { ScoresScalar(q, keys, count, scale, softCap, scores); return; }
        Span<float> s = scores.Slice(0, count);
        for (int j = 0; j < count; j++) s[j] = TensorPrimitives.Dot(q, keys.Slice(j * d, d)); // vector FMA, float32
        TensorPrimitives.Multiply(s, scale, s);
        if (softCap != 0)
        {
            TensorPrimitives.Divide(s, softCap, s);
            TensorPrimitives.Tanh(s, s);
            TensorPrimitives.Multiply(s, softCap, s);
        }
    }

    /// <summary>Scalar reference of <see cref="Scores"/>.</summary>
    internal static void ScoresScalar(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int count, float scale, float softCap, Span<float> scores)
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
        if (!Vector256.IsHardwareAccelerated) { SoftmaxScalar(x); return; }
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }

    /// <summary>Scalar reference of <see cref="SoftmaxInPlace"/>.</summary>
    internal static void SoftmaxScalar(Span<float> x)
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
    /// <remarks>
    /// The output is processed in strips of 4 vectors held in registers across all j (a head of 256 floats is 4 strips
    /// of 64 on Vector512). Each element is still <c>out + w0·v0 + w1·v1 + …</c> in j order, with FMA.
    /// </remarks>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, Span<float> output)
    {
        int d = output.Length, n = weights.Length;
        if (values.Length < (long)n * d) throw new ArgumentException("values too short.", nameof(values));
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= d; i += 64)
            {
                var o0 = Vector512.Create(output.Slice(i, 16)); var o1 = Vector512.Create(output.Slice(i + 16, 16));
                var o2 = Vector512.Create(output.Slice(i + 32, 16)); var o3 = Vector512.Create(output.Slice(i + 48, 16));
                for (int j = 0; j < n; j++)
                {
                    var w = Vector512.Create(weights[j]);
                    ReadOnlySpan<float> v = values.Slice(j * d + i, 64);
                    o0 = Vector512.FusedMultiplyAdd(w, Vector512.Create(v.Slice(0, 16)), o0);
                    o1 = Vector512.FusedMultiplyAdd(w, Vector512.Create(v.Slice(16, 16)), o1);
                    o2 = Vector512.FusedMultiplyAdd(w, Vector512.Create(v.Slice(32, 16)), o2);
                    o3 = Vector512.FusedMultiplyAdd(w, Vector512.Create(v.Slice(48, 16)), o3);
                }
                o0.CopyTo(output.Slice(i, 16)); o1.CopyTo(output.Slice(i + 16, 16));
                o2.CopyTo(output.Slice(i + 32, 16)); o3.CopyTo(output.Slice(i + 48, 16));
            }
            for (; i + 16 <= d; i += 16)
            {
                var o = Vector512.Create(output.Slice(i, 16));
                for (int j = 0; j < n; j++) o = Vector512.FusedMultiplyAdd(Vector512.Create(weights[j]), Vector512.Create(values.Slice(j * d + i, 16)), o);
                o.CopyTo(output.Slice(i, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= d; i += 32)
            {
                var o0 = Vector256.Create(output.Slice(i, 8)); var o1 = Vector256.Create(output.Slice(i + 8, 8));
                var o2 = Vector256.Create(output.Slice(i + 16, 8)); var o3 = Vector256.Create(output.Slice(i + 24, 8));
                for (int j = 0; j < n; j++)
                {
                    var w = Vector256.Create(weights[j]);
                    ReadOnlySpan<float> v = values.Slice(j * d + i, 32);
                    o0 = Vector256.FusedMultiplyAdd(w, Vector256.Create(v.Slice(0, 8)), o0);
                    o1 = Vector256.FusedMultiplyAdd(w, Vector256.Create(v.Slice(8, 8)), o1);
                    o2 = Vector256.FusedMultiplyAdd(w, Vector256.Create(v.Slice(16, 8)), o2);
                    o3 = Vector256.FusedMultiplyAdd(w, Vector256.Create(v.Slice(24, 8)), o3);
                }
                o0.CopyTo(output.Slice(i, 8)); o1.CopyTo(output.Slice(i + 8, 8));
                o2.CopyTo(output.Slice(i + 16, 8)); o3.CopyTo(output.Slice(i + 24, 8));
            }
            for (; i + 8 <= d; i += 8)
            {
                var o = Vector256.Create(output.Slice(i, 8));
                for (int j = 0; j < n; j++) o = Vector256.FusedMultiplyAdd(Vector256.Create(weights[j]), Vector256.Create(values.Slice(j * d + i, 8)), o);
                o.CopyTo(output.Slice(i, 8));
            }
        }
        for (; i < d; i++)
        {
            float o = output[i];
            for (int j = 0; j < n; j++) o += weights[j] * values[j * d + i];
            output[i] = o;
        }
    }

    /// <summary>Scalar reference of <see cref="AccumulateWeightedValues"/>.</summary>
    internal static void AccumulateWeightedValuesScalar(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, Span<float> output)
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
