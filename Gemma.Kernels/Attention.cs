using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>
/// Scaled dot-product attention for the query heads that share one KV head (grouped-query attention), in pieces so that
/// a caller can attend over keys stored in several contiguous segments (e.g. a ring buffer that wrapped):
/// <see cref="Scores(ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, float, Span{float}, int)"/> per segment,
/// one <see cref="SoftmaxInPlace"/> per head over all its scores, then
/// <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, int, int, ReadOnlySpan{float}, int, Span{float})"/> per
/// segment. Each call is single-threaded; parallelize over (token, KV head) with <see cref="WorkerPool.For{T}"/>.
/// <para>
/// The heads of a group are computed two at a time in one pass over the keys (and values): each key/value vector is
/// loaded and widened once and FMA'd into both heads' accumulators, so a KV head's bytes cross the memory bus once and
/// the half-precision widening runs once per pair of heads. Keys and values are walked in blocks of
/// <see cref="KeyBlock"/> positions so a group with more than two heads re-reads a block from L1/L2, not from memory.
/// Neither changes a result: every score and every output element keeps its own order (scores: chunk c of the
/// head dimension into accumulator c % 4, then <c>Sum((a0 + a1) + (a2 + a3))</c>, then the scalar tail; weighted sum:
/// <c>out + w0·v0 + w1·v1 + …</c> in key order with FMA, stored and reloaded between blocks).
/// </para>
/// <para>
/// Half-precision keys/values are read with <see cref="F16ScaledRow"/> (3 instructions per vector instead of 11): the
/// query (or the weights) is multiplied by 2¹¹² once per call and the halves are read as 2⁻¹¹²·h, which leaves every
/// product exactly as it was. When that factor could overflow (|q| or a weight ≥ 2¹⁵, or NaN) the exact
/// <see cref="F16Row"/> widening is used instead. Half keys/values must be finite (the KV cache clamps on write).
/// </para>
/// </summary>
internal static unsafe class Attention
{
    /// <summary>Positions per block of keys/values (64 × 256 × 4 bytes = 64 KB float32 at head_dim 256).</summary>
    internal const int KeyBlock = 64;

    /// <summary>Scores of one query head: <paramref name="q"/> is <c>[d]</c>, <paramref name="scores"/> <c>[count]</c>.</summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int count, float scale, float softCap, Span<float> scores)
        => Scores(q, 1, keys, count, scale, softCap, scores, count);

    /// <summary>Scores of one query head over half-precision keys.</summary>
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<Half> keys, int count, float scale, float softCap, Span<float> scores)
        => Scores(q, 1, keys, count, scale, softCap, scores, count);

    /// <summary>
    /// <c>scores[h·stride + j] = cap · tanh((q_h · keys[j]) · scale / cap)</c> for heads h &lt; <paramref name="heads"/> and
    /// j &lt; count, or without the tanh when <paramref name="softCap"/> is 0. <paramref name="q"/> is
    /// <c>[heads, d]</c>, <paramref name="keys"/> <c>[count, d]</c>.
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, int heads, ReadOnlySpan<float> keys, int count, float scale, float softCap,
        Span<float> scores, int stride)
        => Scores<float>(q, heads, keys, count, scale, softCap, scores, stride);

    /// <summary>
    /// <see cref="Scores(ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, float, Span{float}, int)"/> over
    /// finite IEEE half-precision keys (read as float32 exactly).
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, int heads, ReadOnlySpan<Half> keys, int count, float scale, float softCap,
        Span<float> scores, int stride)
        => Scores<Half>(q, heads, keys, count, scale, softCap, scores, stride);

    /// <summary>
    /// Both overloads above: <typeparamref name="T"/> is <see cref="float"/> or <see cref="Half"/> (typeof checks are
    /// JIT-time constants), so a caller generic over the KV cache's element type needs no dispatch of its own.
    /// </summary>
    internal static void Scores<T>(ReadOnlySpan<float> q, int heads, ReadOnlySpan<T> keys, int count, float scale, float softCap,
        Span<float> scores, int stride) where T : unmanaged
    {
        CheckElementType<T>();
        int d = CheckScores(q.Length, heads, keys.Length, count, scores.Length, stride);
        if (!Vector128.IsHardwareAccelerated)
        {
            for (int h = 0; h < heads; h++) ScoresScalar(q.Slice(h * d, d), keys, count, scale, softCap, scores.Slice(h * stride, count));
            return;
        }
        fixed (float* pq = q) fixed (T* pk = keys) fixed (float* ps = scores)
        {
            if (typeof(T) == typeof(float)) DotsGrouped<F32Row>(pq, heads, d, (byte*)pk, count, ps, stride);
            else if (q.Length > 0 && q.Length <= MaxScaledFloats && TensorPrimitives.MaxMagnitude(q) < F16ScaledRow.MaxOtherMagnitude)
            {
                float* scaled = stackalloc float[q.Length];
                TensorPrimitives.Multiply(q, F16ScaledRow.Compensation, new Span<float>(scaled, q.Length));
                DotsGrouped<F16ScaledRow>(scaled, heads, d, (byte*)pk, count, ps, stride);
            }
            else DotsGrouped<F16Row>(pq, heads, d, (byte*)pk, count, ps, stride);
        }
        for (int h = 0; h < heads; h++) ScaleAndCap(scores.Slice(h * stride, count), scale, softCap);
    }

    // The scaled copy of q lives on the stack (16 KB at most).
    private const int MaxScaledFloats = 4096;

    private static int CheckScores(int qLength, int heads, int keysLength, int count, int scoresLength, int stride)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (qLength % heads != 0) throw new ArgumentException($"q holds {qLength} floats, not a multiple of {heads} heads.");
        int d = qLength / heads;
        if (stride < count) throw new ArgumentException($"The score stride {stride} is below the key count {count}.");
        if (keysLength < (long)count * d || scoresLength < (long)(heads - 1) * stride + count) throw new ArgumentException("keys or scores too short.");
        return d;
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

    /// <summary>All heads' dot products, key block by key block, heads in pairs.</summary>
    private static void DotsGrouped<TRow>(float* q, int heads, int d, byte* keys, int count, float* scores, int stride) where TRow : IRowFormat
    {
        long rowBytes = (long)d * TRow.BytesPerElement;
        for (int j0 = 0; j0 < count; j0 += KeyBlock)
        {
            int m = Math.Min(KeyBlock, count - j0);
            byte* block = keys + j0 * rowBytes;
            int h = 0;
            for (; h + 2 <= heads; h += 2)
            {
                float* q0 = q + h * d, s0 = scores + (long)h * stride + j0;
                if (Vector512.IsHardwareAccelerated && d >= 16) Dots2<Ops512, Vector512<float>, TRow>(q0, q0 + d, block, m, d, s0, s0 + stride);
                else if (Vector256.IsHardwareAccelerated && d >= 8) Dots2<Ops256, Vector256<float>, TRow>(q0, q0 + d, block, m, d, s0, s0 + stride);
                else if (d >= 4) Dots2<Ops128, Vector128<float>, TRow>(q0, q0 + d, block, m, d, s0, s0 + stride);
                else { DotsScalar<TRow>(q0, 1, d, block, m, s0, stride); DotsScalar<TRow>(q0 + d, 1, d, block, m, s0 + stride, stride); }
            }
            if (h < heads)
            {
                float* q0 = q + h * d, s0 = scores + (long)h * stride + j0;
                if (Vector512.IsHardwareAccelerated && d >= 16) Dots1<Ops512, Vector512<float>, TRow>(q0, block, m, d, s0);
                else if (Vector256.IsHardwareAccelerated && d >= 8) Dots1<Ops256, Vector256<float>, TRow>(q0, block, m, d, s0);
                else if (d >= 4) Dots1<Ops128, Vector128<float>, TRow>(q0, block, m, d, s0);
                else DotsScalar<TRow>(q0, 1, d, block, m, s0, stride);
            }
        }
    }

    /// <summary><c>s[j] = q · keys[j]</c>: 4 vector accumulators (chunk c → c % 4), keys read once in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots1<TOps, TV, TRow>(float* q, byte* keys, int count, int d, float* s)
        where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
    {
        int L = TOps.Lanes;
        long rowBytes = (long)d * TRow.BytesPerElement;
        for (int j = 0; j < count; j++)
        {
            byte* k = keys + j * rowBytes;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            int i = 0;
            for (; i + 4 * L <= d; i += 4 * L)
            {
                a0 = TOps.Fma(TOps.Load(q + i), TOps.LoadRow<TRow>(k, i), a0);
                a1 = TOps.Fma(TOps.Load(q + i + L), TOps.LoadRow<TRow>(k, i + L), a1);
                a2 = TOps.Fma(TOps.Load(q + i + 2 * L), TOps.LoadRow<TRow>(k, i + 2 * L), a2);
                a3 = TOps.Fma(TOps.Load(q + i + 3 * L), TOps.LoadRow<TRow>(k, i + 3 * L), a3);
            }
            for (; i + L <= d; i += L) a0 = TOps.Fma(TOps.Load(q + i), TOps.LoadRow<TRow>(k, i), a0);
            float sum = TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
            for (; i < d; i++) sum += q[i] * TRow.Load(k, i);
            s[j] = sum;
        }
    }

    /// <summary><see cref="Dots1{TOps, TV, TRow}"/> for two heads at once: each key vector is loaded and widened once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots2<TOps, TV, TRow>(float* q0, float* q1, byte* keys, int count, int d, float* s0, float* s1)
        where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
    {
        int L = TOps.Lanes;
        long rowBytes = (long)d * TRow.BytesPerElement;
        for (int j = 0; j < count; j++)
        {
            byte* k = keys + j * rowBytes;
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            TV b0 = TOps.Zero, b1 = TOps.Zero, b2 = TOps.Zero, b3 = TOps.Zero;
            int i = 0;
            for (; i + 4 * L <= d; i += 4 * L)
            {
                TV k0 = TOps.LoadRow<TRow>(k, i), k1 = TOps.LoadRow<TRow>(k, i + L);
                TV k2 = TOps.LoadRow<TRow>(k, i + 2 * L), k3 = TOps.LoadRow<TRow>(k, i + 3 * L);
                a0 = TOps.Fma(TOps.Load(q0 + i), k0, a0); b0 = TOps.Fma(TOps.Load(q1 + i), k0, b0);
                a1 = TOps.Fma(TOps.Load(q0 + i + L), k1, a1); b1 = TOps.Fma(TOps.Load(q1 + i + L), k1, b1);
                a2 = TOps.Fma(TOps.Load(q0 + i + 2 * L), k2, a2); b2 = TOps.Fma(TOps.Load(q1 + i + 2 * L), k2, b2);
                a3 = TOps.Fma(TOps.Load(q0 + i + 3 * L), k3, a3); b3 = TOps.Fma(TOps.Load(q1 + i + 3 * L), k3, b3);
            }
            for (; i + L <= d; i += L)
            {
                TV kv = TOps.LoadRow<TRow>(k, i);
                a0 = TOps.Fma(TOps.Load(q0 + i), kv, a0); b0 = TOps.Fma(TOps.Load(q1 + i), kv, b0);
            }
            float sa = TOps.Sum(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)));
            float sb = TOps.Sum(TOps.Add(TOps.Add(b0, b1), TOps.Add(b2, b3)));
            for (; i < d; i++)
            {
                float kv = TRow.Load(k, i);
                sa += q0[i] * kv;
                sb += q1[i] * kv;
            }
            s0[j] = sa;
            s1[j] = sb;
        }
    }

    /// <summary>Scalar path (no SIMD, or d below one vector): each score summed element by element.</summary>
    private static void DotsScalar<TRow>(float* q, int heads, int d, byte* keys, int count, float* scores, int stride) where TRow : IRowFormat
    {
        long rowBytes = (long)d * TRow.BytesPerElement;
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < count; j++)
            {
                byte* k = keys + j * rowBytes;
                float s = 0;
                for (int i = 0; i < d; i++) s += q[h * d + i] * TRow.Load(k, i);
                scores[(long)h * stride + j] = s;
            }
    }

    /// <summary>
    /// Scalar reference of <see cref="Scores(ReadOnlySpan{float}, ReadOnlySpan{float}, int, float, float, Span{float})"/>
    /// and its half-precision twin (<typeparamref name="T"/> is <see cref="float"/> or <see cref="Half"/>).
    /// </summary>
    internal static void ScoresScalar<T>(ReadOnlySpan<float> q, ReadOnlySpan<T> keys, int count, float scale, float softCap, Span<float> scores)
        where T : unmanaged
    {
        int d = q.Length;
        for (int j = 0; j < count; j++)
        {
            ReadOnlySpan<T> k = keys.Slice(j * d, d);
            float s = 0;
            for (int i = 0; i < d; i++) s += q[i] * ToSingle(k[i]);
            s *= scale;
            if (softCap != 0) s = softCap * MathF.Tanh(s / softCap);
            scores[j] = s;
        }
    }

    /// <summary>A float or a half (widened exactly) as float32.</summary>
    private static float ToSingle<T>(T v) where T : unmanaged
        => typeof(T) == typeof(Half) ? (float)Unsafe.As<T, Half>(ref v) : Unsafe.As<T, float>(ref v);

    /// <summary>Numerically stable softmax in place (max subtracted before exp), float32.</summary>
    public static void SoftmaxInPlace(Span<float> x)
    {
        if (x.IsEmpty) return;
        // TensorPrimitives has its own Vector128 path (AdvSimd on ARM64), so only a runtime without SIMD takes the
        // scalar reference (this was Vector256, which sent ARM64 to the scalar loop of MathF.Exp).
        if (!Vector128.IsHardwareAccelerated) { SoftmaxScalar(x); return; }
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
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, Span<float> output)
        => AccumulateWeightedValues(weights, 1, weights.Length, values, weights.Length, output);

    /// <summary>One head over finite half-precision values.</summary>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, ReadOnlySpan<Half> values, Span<float> output)
        => AccumulateWeightedValues(weights, 1, weights.Length, values, weights.Length, output);

    /// <summary>
    /// <c>output[h] += Σ_j weights[h·stride + j] · values[j]</c> for heads h &lt; <paramref name="heads"/> and
    /// j &lt; <paramref name="count"/>; <paramref name="output"/> is <c>[heads, d]</c>, <paramref name="values"/> <c>[count, d]</c>.
    /// </summary>
    /// <remarks>
    /// The output is processed in strips of 4 vectors held in registers (two heads: 8) across the keys of a block.
    /// Each element is still <c>out + w0·v0 + w1·v1 + …</c> in key order, with FMA. That walk reads a block's values
    /// strip by strip (a few lines of every row, then the next few), which the hardware prefetchers do not follow: each
    /// strip pass prefetches the same strip of the next block into L2 (measured: f16 values at 4000 positions 22–25 →
    /// 12.6–14.5 ms per token, 1 thread; see docs/performance.md).
    /// </remarks>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, int heads, int stride, ReadOnlySpan<float> values, int count, Span<float> output)
        => AccumulateWeightedValues<float>(weights, heads, stride, values, count, output);

    /// <summary>
    /// <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, int, int, ReadOnlySpan{float}, int, Span{float})"/> over
    /// finite IEEE half-precision values (read as float32 exactly).
    /// </summary>
    public static void AccumulateWeightedValues(ReadOnlySpan<float> weights, int heads, int stride, ReadOnlySpan<Half> values, int count, Span<float> output)
        => AccumulateWeightedValues<Half>(weights, heads, stride, values, count, output);

    /// <summary>Both overloads above (<typeparamref name="T"/> is <see cref="float"/> or <see cref="Half"/>).</summary>
    internal static void AccumulateWeightedValues<T>(ReadOnlySpan<float> weights, int heads, int stride, ReadOnlySpan<T> values, int count, Span<float> output)
        where T : unmanaged
    {
        CheckElementType<T>();
        int d = CheckAccumulate(weights.Length, heads, stride, values.Length, count, output.Length);
        bool scaled = typeof(T) == typeof(Half) && Vector128.IsHardwareAccelerated;
        for (int h = 0; h < heads && scaled; h++)
            scaled = count == 0 || TensorPrimitives.MaxMagnitude(weights.Slice(h * stride, count)) < F16ScaledRow.MaxOtherMagnitude;
        fixed (float* w = weights) fixed (T* v = values) fixed (float* o = output)
        {
            if (typeof(T) == typeof(float)) AccumulateGrouped<F32Row>(w, heads, stride, (byte*)v, count, o, d);
            else if (scaled) AccumulateGrouped<F16ScaledRow>(w, heads, stride, (byte*)v, count, o, d);
            else AccumulateGrouped<F16Row>(w, heads, stride, (byte*)v, count, o, d);
        }
    }

    private static void CheckElementType<T>()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(Half))
            throw new NotSupportedException($"Attention reads float or Half keys/values, not {typeof(T).Name}.");
    }

    private static int CheckAccumulate(int weightsLength, int heads, int stride, int valuesLength, int count, int outputLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (outputLength % heads != 0) throw new ArgumentException($"output holds {outputLength} floats, not a multiple of {heads} heads.");
        int d = outputLength / heads;
        if (stride < count) throw new ArgumentException($"The weight stride {stride} is below the value count {count}.");
        if (weightsLength < (long)(heads - 1) * stride + count) throw new ArgumentException("weights too short.");
        if (valuesLength < (long)count * d) throw new ArgumentException("values too short.");
        return d;
    }

    /// <summary>
    /// Block by block, heads in pairs. <typeparamref name="TRow"/> = <see cref="F16ScaledRow"/> reads 2⁻¹¹²·v, so the
    /// block's weights are copied multiplied by 2¹¹² (exact; the caller checked they stay finite).
    /// </summary>
    private static void AccumulateGrouped<TRow>(float* weights, int heads, int stride, byte* values, int count, float* output, int d) where TRow : IRowFormat
    {
        long rowBytes = (long)d * TRow.BytesPerElement;
        float* scaled = stackalloc float[2 * KeyBlock];
        for (int j0 = 0; j0 < count; j0 += KeyBlock)
        {
            int m = Math.Min(KeyBlock, count - j0);
            byte* block = values + j0 * rowBytes;
            for (int h = 0; h < heads; h += 2)
            {
                bool pair = h + 1 < heads;
                float* w0 = weights + (long)h * stride + j0, w1 = w0 + stride;
                if (typeof(TRow) == typeof(F16ScaledRow))
                {
                    for (int j = 0; j < m; j++) scaled[j] = w0[j] * F16ScaledRow.Compensation;
                    if (pair) for (int j = 0; j < m; j++) scaled[KeyBlock + j] = w1[j] * F16ScaledRow.Compensation;
                    w0 = scaled;
                    w1 = scaled + KeyBlock;
                }
                float* o0 = output + h * d;
                if (Vector512.IsHardwareAccelerated)
                {
                    if (pair) Accumulate2<Ops512, Vector512<float>, TRow>(w0, w1, m, block, o0, o0 + d, d);
                    else Accumulate1<Ops512, Vector512<float>, TRow>(w0, m, block, o0, d);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    if (pair) Accumulate2<Ops256, Vector256<float>, TRow>(w0, w1, m, block, o0, o0 + d, d);
                    else Accumulate1<Ops256, Vector256<float>, TRow>(w0, m, block, o0, d);
                }
                else if (Vector128.IsHardwareAccelerated)
                {
                    if (pair) Accumulate2<Ops128, Vector128<float>, TRow>(w0, w1, m, block, o0, o0 + d, d);
                    else Accumulate1<Ops128, Vector128<float>, TRow>(w0, m, block, o0, d);
                }
                else
                {
                    AccumulateTail<TRow>(w0, m, block, rowBytes, o0, 0, d);
                    if (pair) AccumulateTail<TRow>(w1, m, block, rowBytes, o0 + d, 0, d);
                }
            }
        }
    }

    /// <summary>One head: strips of 4 vectors, then single vectors, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate1<TOps, TV, TRow>(float* weights, int n, byte* values, float* output, int d)
        where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
    {
        int L = TOps.Lanes;
        long rowBytes = (long)d * TRow.BytesPerElement, ahead = n * rowBytes; // the next block's rows
        int i = 0;
        for (; i + 4 * L <= d; i += 4 * L)
        {
            TV o0 = TOps.Load(output + i), o1 = TOps.Load(output + i + L), o2 = TOps.Load(output + i + 2 * L), o3 = TOps.Load(output + i + 3 * L);
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes)
            {
                Prefetch.ToL2(v + ahead + i * TRow.BytesPerElement, 4 * L * TRow.BytesPerElement);
                TV w = TOps.Create(weights[j]);
                o0 = TOps.Fma(w, TOps.LoadRow<TRow>(v, i), o0);
                o1 = TOps.Fma(w, TOps.LoadRow<TRow>(v, i + L), o1);
                o2 = TOps.Fma(w, TOps.LoadRow<TRow>(v, i + 2 * L), o2);
                o3 = TOps.Fma(w, TOps.LoadRow<TRow>(v, i + 3 * L), o3);
            }
            TOps.Store(output + i, o0); TOps.Store(output + i + L, o1); TOps.Store(output + i + 2 * L, o2); TOps.Store(output + i + 3 * L, o3);
        }
        for (; i + L <= d; i += L)
        {
            TV o = TOps.Load(output + i);
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes) o = TOps.Fma(TOps.Create(weights[j]), TOps.LoadRow<TRow>(v, i), o);
            TOps.Store(output + i, o);
        }
        AccumulateTail<TRow>(weights, n, values, rowBytes, output, i, d);
    }

    /// <summary>Two heads: each value vector is loaded and widened once for both (8 accumulators per strip).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate2<TOps, TV, TRow>(float* w0, float* w1, int n, byte* values, float* out0, float* out1, int d)
        where TOps : IVectorOps<TV> where TV : struct where TRow : IRowFormat
    {
        int L = TOps.Lanes;
        long rowBytes = (long)d * TRow.BytesPerElement, ahead = n * rowBytes; // the next block's rows
        int i = 0;
        for (; i + 4 * L <= d; i += 4 * L)
        {
            TV o0 = TOps.Load(out0 + i), o1 = TOps.Load(out0 + i + L), o2 = TOps.Load(out0 + i + 2 * L), o3 = TOps.Load(out0 + i + 3 * L);
            TV p0 = TOps.Load(out1 + i), p1 = TOps.Load(out1 + i + L), p2 = TOps.Load(out1 + i + 2 * L), p3 = TOps.Load(out1 + i + 3 * L);
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes)
            {
                Prefetch.ToL2(v + ahead + i * TRow.BytesPerElement, 4 * L * TRow.BytesPerElement);
                TV a = TOps.Create(w0[j]), b = TOps.Create(w1[j]);
                TV v0 = TOps.LoadRow<TRow>(v, i), v1 = TOps.LoadRow<TRow>(v, i + L), v2 = TOps.LoadRow<TRow>(v, i + 2 * L), v3 = TOps.LoadRow<TRow>(v, i + 3 * L);
                o0 = TOps.Fma(a, v0, o0); p0 = TOps.Fma(b, v0, p0);
                o1 = TOps.Fma(a, v1, o1); p1 = TOps.Fma(b, v1, p1);
                o2 = TOps.Fma(a, v2, o2); p2 = TOps.Fma(b, v2, p2);
                o3 = TOps.Fma(a, v3, o3); p3 = TOps.Fma(b, v3, p3);
            }
            TOps.Store(out0 + i, o0); TOps.Store(out0 + i + L, o1); TOps.Store(out0 + i + 2 * L, o2); TOps.Store(out0 + i + 3 * L, o3);
            TOps.Store(out1 + i, p0); TOps.Store(out1 + i + L, p1); TOps.Store(out1 + i + 2 * L, p2); TOps.Store(out1 + i + 3 * L, p3);
        }
        for (; i + L <= d; i += L)
        {
            TV o = TOps.Load(out0 + i), p = TOps.Load(out1 + i);
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes)
            {
                TV vv = TOps.LoadRow<TRow>(v, i);
                o = TOps.Fma(TOps.Create(w0[j]), vv, o);
                p = TOps.Fma(TOps.Create(w1[j]), vv, p);
            }
            TOps.Store(out0 + i, o);
            TOps.Store(out1 + i, p);
        }
        AccumulateTail<TRow>(w0, n, values, rowBytes, out0, i, d);
        AccumulateTail<TRow>(w1, n, values, rowBytes, out1, i, d);
    }

    /// <summary>Output elements [from, d) one by one (the part no vector covers; everything on the scalar path).</summary>
    private static void AccumulateTail<TRow>(float* weights, int n, byte* values, long rowBytes, float* output, int from, int d) where TRow : IRowFormat
    {
        for (int i = from; i < d; i++)
        {
            float o = output[i];
            byte* v = values;
            for (int j = 0; j < n; j++, v += rowBytes) o += weights[j] * TRow.Load(v, i);
            output[i] = o;
        }
    }

    /// <summary>
    /// Scalar reference of <see cref="AccumulateWeightedValues(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
    /// and its half-precision twin.
    /// </summary>
    internal static void AccumulateWeightedValuesScalar<T>(ReadOnlySpan<float> weights, ReadOnlySpan<T> values, Span<float> output) where T : unmanaged
    {
        int d = output.Length;
        for (int j = 0; j < weights.Length; j++)
        {
            float w = weights[j];
            ReadOnlySpan<T> v = values.Slice(j * d, d);
            for (int i = 0; i < d; i++) output[i] += w * ToSingle(v[i]);
        }
    }
}
