using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Scaled dot-product attention for one query vector, in pieces so that a caller can attend over keys
/// stored in several contiguous segments (e.g. a ring buffer that wrapped):
/// <see cref="Scores(ReadOnlySpan{float}, ReadOnlySpan{float}, int, float, float, Span{float})"/> per segment, one <see cref="SoftmaxInPlace"/> over all scores, then
/// <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/> per segment. Each call is single-threaded; parallelize over heads
/// with <see cref="WorkerPool.For{T}"/>.
/// </summary>
internal static unsafe class Attention
{
    /// <summary>
    /// <c>scores[j] = cap · tanh((q · keys[j]) · scale / cap)</c> for j &lt; count, or without the tanh when
    /// <paramref name="softCap"/> is 0. <paramref name="keys"/> is <c>[count, q.Length]</c>.
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int count, float scale, float softCap, Span<float> scores)
    {
        if (keys.Length < (long)count * q.Length || scores.Length < count) throw new ArgumentException("keys or scores too short.");
        if (!Vector256.IsHardwareAccelerated) { ScoresScalar(q, keys, count, scale, softCap, scores); return; }
        fixed (float* pq = q) fixed (float* pk = keys) fixed (float* ps = scores) Dots<F32Row>(pq, (byte*)pk, count, q.Length, ps);
        ScaleAndCap(scores.Slice(0, count), scale, softCap);
    }

    /// <summary><see cref="Scores(ReadOnlySpan{float}, ReadOnlySpan{float}, int, float, float, Span{float})"/> over IEEE half-precision keys (read as float32 exactly).</summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<Half> keys, int count, float scale, float softCap, Span<float> scores)
    {
        if (keys.Length < (long)count * q.Length || scores.Length < count) throw new ArgumentException("keys or scores too short.");
        if (!Vector256.IsHardwareAccelerated) { ScoresScalar(q, keys, count, scale, softCap, scores); return; }
        fixed (float* pq = q) fixed (Half* pk = keys) fixed (float* ps = scores) Dots<F16Row>(pq, (byte*)pk, count, q.Length, ps);
        ScaleAndCap(scores.Slice(0, count), scale, softCap);
    }

    private static void ScaleAndCap(Span<float> s, float scale, float softCap)
    {
        TensorPrimitives.Multiply(s, scale, s);
        if (softCap != 0)
        {
            TensorPrimitives.Divide(s, softCap, s);
            TensorPrimitives.Tanh(s, s);
            TensorPrimitives.Multiply(s, softCap, s);
        }
    }

    /// <summary>
    /// <c>scores[j] = q · keys[j]</c>, float32 with FMA: 4 vector accumulators per key (q stays in L1), keys read once
    /// in order — one sequential stream, which is what long contexts need (thousands of keys per head).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots<TFormat>(float* q, byte* keys, int count, int d, float* scores) where TFormat : IRowFormat
    {
        long rowBytes = (long)d * TFormat.BytesPerElement;
        for (int j = 0; j < count; j++)
        {
            byte* k = keys + j * rowBytes;
            int i = 0;
            float s = 0;
            if (Vector512.IsHardwareAccelerated && d >= 16)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; i + 64 <= d; i += 64)
                {
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i), TFormat.Load512(k, i), a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i + 16), TFormat.Load512(k, i + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i + 32), TFormat.Load512(k, i + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i + 48), TFormat.Load512(k, i + 48), a3);
                }
                for (; i + 16 <= d; i += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i), TFormat.Load512(k, i), a0);
                s = Vector512.Sum((a0 + a1) + (a2 + a3));
            }
            else if (Vector256.IsHardwareAccelerated && d >= 8)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; i + 32 <= d; i += 32)
                {
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Load(q + i), TFormat.Load256(k, i), a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Load(q + i + 8), TFormat.Load256(k, i + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Load(q + i + 16), TFormat.Load256(k, i + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.Load(q + i + 24), TFormat.Load256(k, i + 24), a3);
                }
                for (; i + 8 <= d; i += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(q + i), TFormat.Load256(k, i), a0);
                s = Vector256.Sum((a0 + a1) + (a2 + a3));
            }
            for (; i < d; i++) s += q[i] * TFormat.Load(k, i);
            scores[j] = s;
        }
    }

    /// <summary>Scalar reference of <see cref="Scores(ReadOnlySpan{float}, ReadOnlySpan{float}, int, float, float, Span{float})"/>.</summary>
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

    /// <summary>Scalar reference of the half-precision <see cref="Scores(ReadOnlySpan{float}, ReadOnlySpan{Half}, int, float, float, Span{float})"/>.</summary>
    internal static void ScoresScalar(ReadOnlySpan<float> q, ReadOnlySpan<Half> keys, int count, float scale, float softCap, Span<float> scores)
    {
        int d = q.Length;
        for (int j = 0; j < count; j++)
        {
            ReadOnlySpan<Half> k = keys.Slice(j * d, d);
            float s = 0;
            for (int i = 0; i < d; i++) s += q[i] * (float)k[i];
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
        if (values.Length < (long)weights.Length * output.Length) throw new ArgumentException("values too short.", nameof(values));
        fixed (float* w = weights) fixed (float* v = values) fixed (float* o = output) Accumulate<F32Row>(w, weights.Length, (byte*)v, o, output.Length);
    }

    /// <summary><see cref="AccumulateWeightedValues(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/> over IEEE half-precision values (read as float32 exactly).</summary>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, ReadOnlySpan<Half> values, Span<float> output)
    {
        if (values.Length < (long)weights.Length * output.Length) throw new ArgumentException("values too short.", nameof(values));
        fixed (float* w = weights) fixed (Half* v = values) fixed (float* o = output) Accumulate<F16Row>(w, weights.Length, (byte*)v, o, output.Length);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate<TFormat>(float* weights, int n, byte* values, float* output, int d) where TFormat : IRowFormat
    {
        long rowBytes = (long)d * TFormat.BytesPerElement;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= d; i += 64)
            {
                var o0 = Vector512.Load(output + i); var o1 = Vector512.Load(output + i + 16);
                var o2 = Vector512.Load(output + i + 32); var o3 = Vector512.Load(output + i + 48);
                byte* v = values;
                for (int j = 0; j < n; j++, v += rowBytes)
                {
                    var w = Vector512.Create(weights[j]);
                    o0 = Vector512.FusedMultiplyAdd(w, TFormat.Load512(v, i), o0);
                    o1 = Vector512.FusedMultiplyAdd(w, TFormat.Load512(v, i + 16), o1);
                    o2 = Vector512.FusedMultiplyAdd(w, TFormat.Load512(v, i + 32), o2);
                    o3 = Vector512.FusedMultiplyAdd(w, TFormat.Load512(v, i + 48), o3);
                }
                o0.Store(output + i); o1.Store(output + i + 16); o2.Store(output + i + 32); o3.Store(output + i + 48);
            }
            for (; i + 16 <= d; i += 16)
            {
                var o = Vector512.Load(output + i);
                byte* v = values;
                for (int j = 0; j < n; j++, v += rowBytes) o = Vector512.FusedMultiplyAdd(Vector512.Create(weights[j]), TFormat.Load512(v, i), o);
                o.Store(output + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= d; i += 32)
            {
                var o0 = Vector256.Load(output + i); var o1 = Vector256.Load(output + i + 8);
                var o2 = Vector256.Load(output + i + 16); var o3 = Vector256.Load(output + i + 24);
                byte* v = values;
                for (int j = 0; j < n; j++, v += rowBytes)
                {
                    var w = Vector256.Create(weights[j]);
                    o0 = Vector256.FusedMultiplyAdd(w, TFormat.Load256(v, i), o0);
                    o1 = Vector256.FusedMultiplyAdd(w, TFormat.Load256(v, i + 8), o1);
                    o2 = Vector256.FusedMultiplyAdd(w, TFormat.Load256(v, i + 16), o2);
                    o3 = Vector256.FusedMultiplyAdd(w, TFormat.Load256(v, i + 24), o3);
                }
                o0.Store(output + i); o1.Store(output + i + 8); o2.Store(output + i + 16); o3.Store(output + i + 24);
            }
            for (; i + 8 <= d; i += 8)
            {
                var o = Vector256.Load(output + i);
                byte* v = values;
                for (int j = 0; j < n; j++, v += rowBytes) o = Vector256.FusedMultiplyAdd(Vector256.Create(weights[j]), TFormat.Load256(v, i), o);
                o.Store(output + i);
            }
        }
        for (; i < d; i++)
        {
            float o = output[i];
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes) o += weights[j] * TFormat.Load(v, i);
            output[i] = o;
        }
    }

    /// <summary>Scalar reference of <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>.</summary>
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

    /// <summary>Scalar reference of the half-precision <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, ReadOnlySpan{Half}, Span{float})"/>.</summary>
    internal static void AccumulateWeightedValuesScalar(ReadOnlySpan<float> weights, ReadOnlySpan<Half> values, Span<float> output)
    {
        int d = output.Length;
        for (int j = 0; j < weights.Length; j++)
        {
            float w = weights[j];
            ReadOnlySpan<Half> v = values.Slice(j * d, d);
            for (int i = 0; i < d; i++) output[i] += w * (float)v[i];
        }
    }
}
