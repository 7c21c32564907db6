using Gemma.Core.Config;
using Gemma.Kernels;

namespace Gemma.Core.Model;

internal sealed partial class Transformer
{
    /// <summary>
    /// Grouped-query self-attention for <paramref name="n"/> rows: the tokens of one sequence at positions
    /// <c>cache.Length … + n − 1</c>, or (<paramref name="batch"/> not null) rows of several sequences, each at its own
    /// position in its own cache (<see cref="BatchRows"/>). Project q/k/v, [per-head q/k norm], RoPE, append k/v to the
    /// row's cache, then for every query head attend over the visible cached positions. Visibility follows the
    /// reference mask: query p sees key k iff k ≤ p and, on a sliding layer, p − k &lt; window. Writes
    /// <see cref="InferenceState.AttentionOut"/> <c>[n, heads·head_dim]</c>. A row's result depends only on its own
    /// cache and position, never on the other rows.
    /// </summary>
    private void SelfAttention(int l, LayerWeights w, int n, InferenceState s, KvCache? cache, BatchRows? batch, WorkerPool? pool)
    {
        GemmaConfig c = _config;
        int hd = c.HeadDim, qDim = c.QueryDim, kvDim = c.KvDim;
        ProjectQkv(w, n, s, pool);
        Span<float> q = s.Q.AsSpan(0, n * qDim);
        Span<float> k = s.K.AsSpan(0, n * kvDim);
        Span<float> v = s.V.AsSpan(0, n * kvDim);

        bool local = c.LayerTypes[l] == AttentionKind.Sliding && c.RopeLocalTheta != c.RopeTheta;
        float[] cosTable = local ? s.RopeCosLocal : s.RopeCosGlobal, sinTable = local ? s.RopeSinLocal : s.RopeSinGlobal;
        int start = cache?.Length ?? 0, half = hd / 2;
        for (int i = 0; i < n; i++)
        {
            KvCache rowCache = batch?.Caches[i] ?? cache!;
            ReadOnlySpan<float> cos = cosTable.AsSpan(i * half, half), sin = sinTable.AsSpan(i * half, half);
            Rope.ApplyRotateHalf(q.Slice(i * qDim, qDim), hd, cos, sin);
            Rope.ApplyRotateHalf(k.Slice(i * kvDim, kvDim), hd, cos, sin);
            int slot = (batch?.Positions[i] ?? start + i) % rowCache.Capacity(l);
            for (int kh = 0; kh < c.NumKvHeads; kh++)
                rowCache.Write(l, kh, slot, k.Slice(i * kvDim + kh * hd, hd), v.Slice(i * kvDim + kh * hd, hd));
        }
        s.Lap(Phase.Rope);

        var work = new AttentionWork
        {
            Model = this,
            Q = q,
            Output = s.AttentionOut.AsSpan(0, n * qDim),
            Cache = cache,
            Batch = batch,
            Layer = l,
            Start = start,
            Window = c.AttentionWindow(l),
            SoftCap = c.AttnLogitSoftcapping is double cap ? (float)cap : 0f,
        };
        work.Output.Clear();
        // One item per (token, KV head) with all query heads of its group, so each key and value is read from memory
        // once per token and re-read from L1/L2 by the group's other heads. When that leaves fewer than two items per
        // thread (e.g. decode with few KV heads on many cores), one item per (token, query head) instead.
        int group = c.NumHeads / c.NumKvHeads;
        int threads = pool?.Threads ?? 1;
        work.HeadsPerItem = n * c.NumKvHeads >= 2 * threads ? group : 1;
        int items = n * c.NumHeads / work.HeadsPerItem;
        if (pool != null) pool.For(items, ref work);
        else for (int i = 0; i < items; i++) work.Execute(i);
        s.Lap(Phase.Attention);
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
        s.Lap(Phase.Qkv);
        if (w.QNorm != null) RmsNorm.Apply(q, w.QNorm, (float)c.RmsNormEps, q);
        if (w.KNorm != null) RmsNorm.Apply(k, w.KNorm, (float)c.RmsNormEps, k);
        s.Lap(Phase.Norms);
    }


    /// <summary>
    /// Attention of <see cref="HeadsPerItem"/> consecutive query heads (sharing one KV head) of one token; items are
    /// independent, so any thread may run any of them.
    /// </summary>
    private ref struct AttentionWork : IParallelWork
    {
        [ThreadStatic] private static float[]? t_scores;

        public Transformer Model;
        public Span<float> Q;        // [n, heads·head_dim]
        public Span<float> Output;   // [n, heads·head_dim]
        public KvCache? Cache;       // the sequence's cache (rows at Start, Start + 1, …), or
        public BatchRows? Batch;     // each row's own cache and position
        public int Layer, Start, HeadsPerItem;
        public long Window;
        public float SoftCap;

        public void Execute(int index)
        {
            GemmaConfig c = Model._config;
            int heads = c.NumHeads, hd = c.HeadDim, itemsPerToken = heads / HeadsPerItem;
            int i = index / itemsPerToken, head = index % itemsPerToken * HeadsPerItem;
            int kh = head / (heads / c.NumKvHeads);  // grouped-query attention: consecutive query heads share a KV head
            KvCache cache = Batch?.Caches[i] ?? Cache!;
            int p = Batch?.Positions[i] ?? Start + i;
            int first = (int)Math.Max(0, p - Window + 1);
            int needed = (p - first + 1) * HeadsPerItem;
            // Sized for the whole context (a query sees at most every position), not for this token: growing by one
            // float per token allocated a new array on every decode step once past 256 positions.
            if (t_scores == null || t_scores.Length < needed)
                t_scores = new float[Math.Max(Math.Max(cache.ContextLength * HeadsPerItem, needed), 256)];
            int offset = (i * heads + head) * hd, length = HeadsPerItem * hd;
            if (cache.Type == KvCacheType.Float16)
                Model.Attend<Half>(Q.Slice(offset, length), cache.Keys<Half>(Layer, kh), cache.Values<Half>(Layer, kh), first, p,
                    cache.Capacity(Layer), SoftCap, t_scores, Output.Slice(offset, length));
            else
                Model.Attend<float>(Q.Slice(offset, length), cache.Keys<float>(Layer, kh), cache.Values<float>(Layer, kh), first, p,
                    cache.Capacity(Layer), SoftCap, t_scores, Output.Slice(offset, length));
        }
    }

    /// <summary>
    /// Query heads <paramref name="q"/> <c>[g, head_dim]</c> sharing one KV head, over positions
    /// [<paramref name="first"/>, <paramref name="last"/>] of a ring buffer of <paramref name="capacity"/> slots: at most
    /// two contiguous segments (before and after the wrap). The kernels walk each segment's keys and values once for all
    /// g heads (two heads per pass, in blocks of <see cref="Attention.KeyBlock"/> keys).
    /// </summary>
    private void Attend<T>(ReadOnlySpan<float> q, ReadOnlySpan<T> keys, ReadOnlySpan<T> values, int first, int last,
        int capacity, float softCap, float[] scoreBuffer, Span<float> output) where T : unmanaged
    {
        int hd = _config.HeadDim, g = q.Length / hd;
        int count = last - first + 1;
        int a = first % capacity;
        int lenA = Math.Min(count, capacity - a); // first segment: slots a … a + lenA − 1
        // Segments as (first slot, length, offset in the scores): the wrapped one starts at slot 0.
        Span<(int Slot, int Length, int Offset)> segments = [(a, lenA, 0), (0, count - lenA, lenA)];
        foreach (var (slot, length, offset) in segments)
            if (length > 0) Attention.Scores(q, g, keys.Slice(slot * hd, length * hd), length, _queryScale, softCap, scoreBuffer.AsSpan(offset), count);
        for (int h = 0; h < g; h++) Attention.SoftmaxInPlace(scoreBuffer.AsSpan(h * count, count));
        foreach (var (slot, length, offset) in segments)
            if (length > 0) Attention.AccumulateWeightedValues(scoreBuffer.AsSpan(offset), g, count, values.Slice(slot * hd, length * hd), length, output);
    }
}
