using System.Runtime.InteropServices;
using Gemma.Core.Config;
using Gemma.Kernels;

namespace Gemma.Core.Model;

internal sealed partial class Transformer
{
    /// <summary>
    /// Grouped-query self-attention for tokens at positions <c>cache.Length … + n − 1</c>:
    /// project q/k/v, [per-head q/k norm], RoPE, append k/v to the cache, then for every query head attend over the
    /// visible cached positions. Visibility follows the reference mask: query p sees key k iff k ≤ p and, on a sliding
    /// layer, p − k &lt; window. Writes <see cref="InferenceState.AttentionOut"/> <c>[n, heads·head_dim]</c>.
    /// </summary>
    private void SelfAttention(int l, LayerWeights w, int n, InferenceState s, KvCache cache, WorkerPool? pool)
    {
        GemmaConfig c = _config;
        int hd = c.HeadDim, qDim = c.QueryDim, kvDim = c.KvDim;
        ProjectQkv(w, n, s, pool);
        Span<float> q = s.Q.AsSpan(0, n * qDim);
        Span<float> k = s.K.AsSpan(0, n * kvDim);
        Span<float> v = s.V.AsSpan(0, n * kvDim);

        bool local = c.LayerTypes[l] == AttentionKind.Sliding && c.RopeLocalTheta != c.RopeTheta;
        float[] cosTable = local ? s.RopeCosLocal : s.RopeCosGlobal, sinTable = local ? s.RopeSinLocal : s.RopeSinGlobal;
        int start = cache.Length, capacity = cache.Capacity(l), half = hd / 2;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> cos = cosTable.AsSpan(i * half, half), sin = sinTable.AsSpan(i * half, half);
            Rope.ApplyRotateHalf(q.Slice(i * qDim, qDim), hd, cos, sin);
            Rope.ApplyRotateHalf(k.Slice(i * kvDim, kvDim), hd, cos, sin);
            int slot = (start + i) % capacity;
            for (int kh = 0; kh < c.NumKvHeads; kh++)
                cache.Write(l, kh, slot, k.Slice(i * kvDim + kh * hd, hd), v.Slice(i * kvDim + kh * hd, hd));
        }

        var work = new AttentionWork
        {
            Model = this,
            Q = q,
            Output = s.AttentionOut.AsSpan(0, n * qDim),
            Cache = cache,
            Layer = l,
            Start = start,
            Window = c.AttentionWindow(l),
            SoftCap = c.AttnLogitSoftcapping is double cap ? (float)cap : 0f,
        };
        work.Output.Clear();
        // One item per (token, query head): enough parallelism for decode (heads) and prefill (tokens × heads).
        if (pool != null) pool.For(n * c.NumHeads, ref work);
        else for (int i = 0; i < n * c.NumHeads; i++) work.Execute(i);
    }

    /// <summary>q, k, v = normed · W{q,k,v}ᵀ for <paramref name="n"/> rows, then the optional per-head q/k norms.</summary>
    private void ProjectQkv(LayerWeights w, int n, InferenceState s, WorkerPool? pool)
    {
        GemmaConfig c = _config;
        Span<float> normed = s.Normed.AsSpan(0, n * c.HiddenSize);
        Span<float> q = s.Q.AsSpan(0, n * c.QueryDim);
        Span<float> k = s.K.AsSpan(0, n * c.KvDim);
        Span<float> v = s.V.AsSpan(0, n * c.KvDim);
        MatMul.Linear3(w.QProj, q, w.KProj, k, w.VProj, v, normed, n, pool); // one pool round-trip for q, k, v
        if (w.QNorm != null) RmsNorm.Apply(q, w.QNorm, (float)c.RmsNormEps, q);
        if (w.KNorm != null) RmsNorm.Apply(k, w.KNorm, (float)c.RmsNormEps, k);
    }

    /// <summary>Attention of one query head of one token; items are independent, so any thread may run any of them.</summary>
    private ref struct AttentionWork : IParallelWork
    {
        [ThreadStatic] private static float[]? t_scores;

        public Transformer Model;
        public Span<float> Q;        // [n, heads·head_dim]
        public Span<float> Output;   // [n, heads·head_dim]
        public KvCache Cache;
        public int Layer, Start;
        public long Window;
        public float SoftCap;

        public void Execute(int index)
        {
            GemmaConfig c = Model._config;
            int heads = c.NumHeads, hd = c.HeadDim;
            int i = index / heads, head = index % heads;
            int kh = head / (heads / c.NumKvHeads);  // grouped-query attention: consecutive query heads share a KV head
            int p = Start + i;
            int first = (int)Math.Max(0, p - Window + 1);
            int needed = p - first + 1;
            // Sized for the whole context (a query sees at most every position), not for this token: growing by one
            // float per token allocated a new array on every decode step once past 256 positions.
            if (t_scores == null || t_scores.Length < needed) t_scores = new float[Math.Max(Math.Max(Cache.ContextLength, needed), 256)];
            int offset = (i * heads + head) * hd;
            if (Cache.Type == KvCacheType.Float16)
                Model.AttendOne<Half>(Q.Slice(offset, hd), Cache.Keys<Half>(Layer, kh), Cache.Values<Half>(Layer, kh), first, p,
                    Cache.Capacity(Layer), SoftCap, t_scores, Output.Slice(offset, hd));
            else
                Model.AttendOne<float>(Q.Slice(offset, hd), Cache.Keys<float>(Layer, kh), Cache.Values<float>(Layer, kh), first, p,
                    Cache.Capacity(Layer), SoftCap, t_scores, Output.Slice(offset, hd));
        }
    }

    /// <summary>
    /// One query head over positions [<paramref name="first"/>, <paramref name="last"/>] of a ring buffer of
    /// <paramref name="capacity"/> slots: at most two contiguous segments (before and after the wrap).
    /// </summary>
    private void AttendOne<T>(ReadOnlySpan<float> q, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, int first, int last,
        int capacity, float softCap, float[] scoreBuffer, Span<float> output) where T : unmanaged
    {
        int hd = q.Length;
        int count = last - first + 1;
        int a = first % capacity;
        int lenA = Math.Min(count, capacity - a); // first segment: slots a … a + lenA − 1
        int lenB = count - lenA;                  // wrapped segment: slots 0 … lenB − 1
        Span<float> scores = scoreBuffer.AsSpan(0, count);
        Scores(q, keys.Slice(a * hd, lenA * hd), lenA, softCap, scores);
        if (lenB > 0) Scores(q, keys.Slice(0, lenB * hd), lenB, softCap, scores.Slice(lenA));
        Attention.SoftmaxInPlace(scores);
        WeightedValues(scores.Slice(0, lenA), values.Slice(a * hd, lenA * hd), output);
        if (lenB > 0) WeightedValues(scores.Slice(lenA), values.Slice(0, lenB * hd), output);
    }

    // The kernel overload for the cache's element type (typeof checks are JIT-time constants).
    private void Scores<T>(ReadOnlySpan<float> q, ReadOnlySpan<T> keys, int count, float softCap, Span<float> scores) where T : unmanaged
    {
        if (typeof(T) == typeof(Half)) Attention.Scores(q, MemoryMarshal.Cast<T, Half>(keys), count, _queryScale, softCap, scores);
        else Attention.Scores(q, MemoryMarshal.Cast<T, float>(keys), count, _queryScale, softCap, scores);
    }

    private static void WeightedValues<T>(ReadOnlySpan<float> weights, ReadOnlySpan<T> values, Span<float> output) where T : unmanaged
    {
        if (typeof(T) == typeof(Half)) Attention.AccumulateWeightedValues(weights, MemoryMarshal.Cast<T, Half>(values), output);
        else Attention.AccumulateWeightedValues(weights, MemoryMarshal.Cast<T, float>(values), output);
    }
}
