using Gemma.Core.Config;
using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>
/// The Gemma decoder forward pass over a chunk of tokens, reading like the paper:
/// embed × √d → N × (norm → attention → [post-norm] → +residual → norm → GeGLU MLP → [post-norm] → +residual)
/// → final norm → tied head → [soft-cap]. Stateless: weights are shared, state and cache belong to a sequence.
/// </summary>
internal sealed partial class Transformer
{
    private readonly GemmaConfig _config;
    private readonly GemmaWeights _weights;
    private readonly float _embedScale;
    private readonly float _queryScale;

    /// <summary>Binds a config to its weights.</summary>
    public Transformer(GemmaConfig config, GemmaWeights weights)
    {
        _config = config;
        _weights = weights;
        // The reference multiplies embeddings by sqrt(hidden_size) cast to the activation dtype (float32 here).
        _embedScale = (float)Math.Sqrt(config.HiddenSize);
        _queryScale = (float)Math.Pow(config.QueryPreAttnScalar, -0.5);
    }

    /// <summary>The model's configuration.</summary>
    public GemmaConfig Config => _config;

    /// <summary>
    /// Runs <paramref name="tokens"/> (at most <see cref="InferenceState.MaxChunk"/>) at positions
    /// <c>cache.Length …</c>, appends their keys/values to <paramref name="cache"/>, and writes logits:
    /// for every token into <paramref name="allLogits"/> (<c>[n, vocab]</c>) when it is not empty, and always for the
    /// last token into <see cref="InferenceState.Logits"/> — unless <paramref name="lastLogits"/> is false (a prompt's
    /// earlier chunks: the output head is a fifth of the weights, and nobody reads those logits).
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, InferenceState state, KvCache cache, WorkerPool? pool, Span<float> allLogits = default,
        bool lastLogits = true)
    {
        int n = tokens.Length;
        if (n == 0) return;
        if (n > state.MaxChunk) throw new ArgumentException($"A chunk holds at most {state.MaxChunk} tokens, got {n}.", nameof(tokens));
        if (cache.Length + n > cache.ContextLength)
            throw new GemmaException($"Context full: {cache.Length} + {n} tokens exceed the context length {cache.ContextLength}.");
        int h = _config.HiddenSize;
        Span<float> x = state.X.AsSpan(0, n * h);

        Embed(tokens, x);
        state.Lap(Phase.Embed);
        RopeTables(cache.Length, n, state);
        state.Lap(Phase.Rope);
        for (int l = 0; l < _config.NumLayers; l++) DecoderLayer(l, n, state, cache, null, pool);
        cache.Length += n;

        if (!allLogits.IsEmpty)
        {
            for (int i = 0; i < n; i++) OutputHead(x.Slice(i * h, h), state, allLogits.Slice(i * _config.VocabSize, _config.VocabSize), pool);
            allLogits.Slice((n - 1) * _config.VocabSize, _config.VocabSize).CopyTo(state.Logits);
        }
        else if (lastLogits)
        {
            OutputHead(x.Slice((n - 1) * h, h), state, state.Logits, pool);
        }
    }

    private void Embed(ReadOnlySpan<int> tokens, Span<float> x)
    {
        int h = _config.HiddenSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)_config.VocabSize)
                throw new GemmaException($"Token id {tokens[i]} is outside the vocabulary (0..{_config.VocabSize - 1}).");
            Span<float> row = x.Slice(i * h, h);
            WeightRows.ToSingle(_weights.Embedding, tokens[i], row);
            Activations.ScaleInPlace(row, _embedScale);
        }
    }

    /// <summary>
    /// cos/sin of every row's position, once per pass for each RoPE base (shared by all layers): positions
    /// <c>start + i</c> of one sequence's chunk, or each batch row's own position when <paramref name="batch"/> is set.
    /// </summary>
    private void RopeTables(int start, int n, InferenceState s, BatchRows? batch = null)
    {
        int half = _config.HeadDim / 2;
        for (int i = 0; i < n; i++)
        {
            int position = batch?.Positions[i] ?? start + i;
            Rope.CosSin(position, s.InvFreqGlobal, s.RopeCosGlobal.AsSpan(i * half, half), s.RopeSinGlobal.AsSpan(i * half, half));
            if (_config.RopeLocalTheta == _config.RopeTheta) continue;
            Rope.CosSin(position, s.InvFreqLocal, s.RopeCosLocal.AsSpan(i * half, half), s.RopeSinLocal.AsSpan(i * half, half));
        }
    }

    /// <summary>
    /// One decoder layer over <paramref name="n"/> rows: the tokens of one sequence's chunk (<paramref name="cache"/>),
    /// or the rows of a batch of sequences (<paramref name="batch"/>, see <c>Transformer.Batch.cs</c>). Only where
    /// attention finds a row's cache and position differs between the two; every other step treats rows independently.
    /// </summary>
    private void DecoderLayer(int l, int n, InferenceState s, KvCache? cache, BatchRows? batch, WorkerPool? pool)
    {
        LayerWeights w = _weights.Layers[l];
        int h = _config.HiddenSize;
        float eps = (float)_config.RmsNormEps;
        Span<float> x = s.X.AsSpan(0, n * h);
        Span<float> normed = s.Normed.AsSpan(0, n * h);
        Span<float> delta = s.Delta.AsSpan(0, n * h);

        // Attention block. (s.Lap: the time since the previous lap goes to that phase, when profiling.)
        RmsNorm.Apply(x, w.InputNorm, eps, normed);
        s.Lap(Phase.Norms);
        SelfAttention(l, w, n, s, cache, batch, pool);
        MatMul.Linear(w.OProj, s.AttentionOut.AsSpan(0, n * _config.QueryDim), delta, n, pool);
        s.Lap(Phase.OProj);
        if (w.PostAttentionNorm != null) RmsNorm.Apply(delta, w.PostAttentionNorm, eps, delta);
        Activations.AddInPlace(x, delta);

        // Feed-forward block: GeGLU, down(gelu_tanh(gate(x)) · up(x)).
        RmsNorm.Apply(x, w.PreFeedforwardNorm, eps, normed);
        s.Lap(Phase.Norms);
        int f = _config.IntermediateSize;
        Span<float> gate = s.Gate.AsSpan(0, n * f);
        Span<float> up = s.Up.AsSpan(0, n * f);
        MatMul.Linear2(w.GateProj, gate, w.UpProj, up, normed, n, pool);
        s.Lap(Phase.GateUp);
        GeluTanhMulRows(gate, up, n, f, pool);
        s.Lap(Phase.Activation);
        MatMul.Linear(w.DownProj, gate, delta, n, pool);
        s.Lap(Phase.Down);
        if (w.PostFeedforwardNorm != null) RmsNorm.Apply(delta, w.PostFeedforwardNorm, eps, delta);
        Activations.AddInPlace(x, delta);
        s.Lap(Phase.Norms);
    }

    private void OutputHead(ReadOnlySpan<float> hidden, InferenceState s, Span<float> logits, WorkerPool? pool)
    {
        Span<float> normed = s.Normed.AsSpan(0, _config.HiddenSize);
        RmsNorm.Apply(hidden, _weights.FinalNorm, (float)_config.RmsNormEps, normed);
        s.Lap(Phase.Norms);
        MatMul.Linear(_weights.OutputHead, normed, logits, 1, pool);
        s.Lap(Phase.Head);
        if (_config.FinalLogitSoftcapping is double cap) SoftCapRows(logits, 1, _config.VocabSize, (float)cap, pool);
        s.Lap(Phase.SoftCap);
    }
}
