using Gemma.Core.Config;
using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>
/// Buffers of a batched forward pass over up to <see cref="MaxRows"/> rows that may belong to different sequences
/// (continuous batching), and the worker threads that run it. Allocated once per scheduler; one pass at a time.
/// </summary>
internal sealed class BatchRows : IDisposable
{
    public BatchRows(GemmaConfig config, int maxRows, int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        MaxRows = maxRows;
        Pool = threads > 1 ? new WorkerPool(threads) : null;
        State = new InferenceState(config, maxRows);
        Caches = new KvCache[maxRows];
        Positions = new int[maxRows];
        Logits = new float[(long)maxRows * config.VocabSize];
    }

    /// <summary>Most rows per pass.</summary>
    public int MaxRows { get; }

    /// <summary>Activations <c>[rows, …]</c>, one row per token of the pass.</summary>
    public InferenceState State { get; }

    /// <summary><c>[rows]</c> the KV cache each row reads and appends to (valid during a pass).</summary>
    public KvCache[] Caches { get; }

    /// <summary><c>[rows]</c> the position of each row in its sequence.</summary>
    public int[] Positions { get; }

    /// <summary><c>[logit rows, vocab]</c> logits of the rows asked for, in the order asked.</summary>
    public float[] Logits { get; }

    /// <summary>Worker threads of the pass (null: the calling thread alone).</summary>
    public WorkerPool? Pool { get; }

    public void Dispose() => Pool?.Dispose();
}

internal sealed partial class Transformer
{
    /// <summary>The weights (for benchmarks that time the pass's matmuls on their own).</summary>
    internal GemmaWeights Weights => _weights;

    /// <summary>
    /// One forward pass over rows from several sequences: row i is <paramref name="tokens"/>[i] appended to
    /// <paramref name="caches"/>[i]. Rows of the same cache are consecutive positions in row order (a prefill chunk);
    /// a decode step is one row per sequence. Every matmul runs once with n = rows, so the weights are read once for
    /// all sequences; RMSNorm, RoPE and the MLP are per row, and attention is per row over the row's own cache.
    /// Logits of the rows in <paramref name="logitRows"/> (ascending) go to <see cref="BatchRows.Logits"/>, row j of
    /// it for <c>logitRows[j]</c>.
    /// </summary>
    internal void ForwardBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<KvCache> caches, ReadOnlySpan<int> logitRows, BatchRows batch)
    {
        WorkerPool? pool = batch.Pool;
        int n = tokens.Length;
        if (n == 0) return;
        if (caches.Length != n) throw new ArgumentException($"{n} tokens but {caches.Length} caches.", nameof(caches));
        if (n > batch.MaxRows) throw new ArgumentException($"A batch holds at most {batch.MaxRows} rows, got {n}.", nameof(tokens));
        AssignPositions(caches, batch);

        InferenceState s = batch.State;
        int h = _config.HiddenSize;
        Span<float> x = s.X.AsSpan(0, n * h);
        Embed(tokens, x);
        s.Lap(Phase.Embed);
        RopeTables(0, n, s, batch);
        s.Lap(Phase.Rope);
        for (int l = 0; l < _config.NumLayers; l++) DecoderLayer(l, n, s, null, batch, pool);
        for (int i = 0; i < n; i++) caches[i].Length = batch.Positions[i] + 1;

        // Output head once for all rows that need logits: final norm per row, then one [rows, vocab] matmul.
        int k = logitRows.Length;
        if (k == 0) return;
        Span<float> normed = s.Normed.AsSpan(0, k * h);
        for (int j = 0; j < k; j++)
        {
            int row = logitRows[j];
            if ((uint)row >= (uint)n || (j > 0 && row <= logitRows[j - 1])) throw new ArgumentException("logitRows must be ascending row indices.", nameof(logitRows));
            RmsNorm.Apply(x.Slice(row * h, h), _weights.FinalNorm, (float)_config.RmsNormEps, normed.Slice(j * h, h));
        }
        s.Lap(Phase.Norms);
        Span<float> logits = batch.Logits.AsSpan(0, k * _config.VocabSize);
        MatMul.Linear(_weights.OutputHead, normed, logits, k, pool);
        s.Lap(Phase.Head);
        if (_config.FinalLogitSoftcapping is double cap) SoftCapRows(logits, k, _config.VocabSize, (float)cap, pool);
        s.Lap(Phase.SoftCap);
    }

    /// <summary>
    /// <c>gate = gelu_tanh(gate) · up</c> for <paramref name="n"/> rows of <paramref name="width"/> on the pool: elementwise,
    /// so each value is that of a single call over all rows (a batch of n streams would otherwise run n × 9216 of them
    /// per layer on one thread while the pool's others wait, and decode's one row half as fast).
    /// </summary>
    private static void GeluTanhMulRows(Span<float> gate, ReadOnlySpan<float> up, int n, int width, WorkerPool? pool)
    {
        if (pool is null) { Activations.GeluTanhMul(gate, up, gate); return; }
        var work = new RowsWork { A = gate, B = up };
        work.Split(n, width, pool);
    }

    /// <summary>Final logit soft-capping of <paramref name="rows"/> rows of logits on the pool (elementwise, as <see cref="GeluTanhMulRows"/>).</summary>
    private static void SoftCapRows(Span<float> logits, int rows, int vocab, float cap, WorkerPool? pool)
    {
        if (pool is null) { Activations.SoftCapInPlace(logits, cap); return; }
        var work = new RowsWork { A = logits, Cap = cap };
        work.Split(rows, vocab, pool);
    }

    /// <summary>
    /// Piece i of an elementwise activation over rows: GeLU·up when <see cref="B"/> is set, else soft-capping by
    /// <see cref="Cap"/>. A row is one piece, or — when there are fewer rows than threads (decode) — cut into pieces
    /// of a multiple of <see cref="Activations.Chunk"/> elements, which gives the same bits as the whole row.
    /// </summary>
    private ref struct RowsWork : IParallelWork
    {
        private const int PieceAlign = Activations.Chunk;
        public Span<float> A;
        public ReadOnlySpan<float> B;
        public float Cap;
        private int _width, _pieces, _piece;

        public void Split(int rows, int width, WorkerPool pool)
        {
            _width = width;
            _pieces = rows >= pool.Threads ? 1 : (pool.Threads + rows - 1) / rows;
            _piece = _pieces == 1 ? width : Math.Max(PieceAlign, (width / _pieces + PieceAlign - 1) / PieceAlign * PieceAlign);
            if (_pieces > 1) _pieces = (width + _piece - 1) / _piece;
            pool.For(rows * _pieces, ref this);
        }

        public readonly void Execute(int i)
        {
            int row = i / _pieces, start = i % _pieces * _piece, length = Math.Min(_piece, _width - start);
            Span<float> a = A.Slice(row * _width + start, length);
            if (B.IsEmpty) Activations.SoftCapInPlace(a, Cap);
            else Activations.GeluTanhMul(a, B.Slice(row * _width + start, length), a);
        }
    }

    /// <summary>
    /// Position of each row: its cache's length plus the earlier rows of the same cache. Checks that no cache overflows
    /// its context and that no cache gets more rows than its sliding-window ring buffers allow per pass.
    /// </summary>
    private static void AssignPositions(ReadOnlySpan<KvCache> caches, BatchRows batch)
    {
        for (int i = 0; i < caches.Length; i++)
        {
            KvCache cache = caches[i] ?? throw new ArgumentNullException(nameof(caches));
            int earlier = 0;
            for (int j = 0; j < i; j++) if (ReferenceEquals(caches[j], cache)) earlier++;
            if (earlier >= cache.MaxChunk)
                throw new ArgumentException($"A cache takes at most {cache.MaxChunk} rows per pass.", nameof(caches));
            int position = cache.Length + earlier;
            if (position >= cache.ContextLength)
                throw new GemmaException($"Context full: position {position} is past the context length {cache.ContextLength}.");
            batch.Caches[i] = cache;
            batch.Positions[i] = position;
        }
    }
}
