using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Core;

/// <summary>
/// One sequence being processed: its KV cache and activation buffers. Not thread-safe; create one per concurrent
/// generation (they all share the model's weights and its worker threads).
/// </summary>
public sealed class InferenceContext : IDisposable
{
    private readonly GemmaModel _model;
    private readonly InferenceState _state;
    private readonly KvCache _cache;
    private readonly WorkerPool? _pool;

    /// <summary>The model's worker threads this context runs its kernels on (null when single-threaded).</summary>
    internal WorkerPool? Pool => _pool;

    internal InferenceContext(GemmaModel model, int contextLength)
    {
        _model = model;
        int chunk = Math.Min(model.Options.PrefillChunk, contextLength);
        _pool = model.Pool;
        _state = new InferenceState(model.Config, chunk);
        _cache = new KvCache(model.Config, contextLength, chunk, model.Options.KvCache);
    }

    /// <summary>Positions processed so far; the next token goes to this position.</summary>
    public int Position => _cache.Length;

    /// <summary>Most positions this context can hold.</summary>
    public int ContextLength => _cache.ContextLength;

    /// <summary>Vocabulary size (length of a logits row).</summary>
    public int VocabSize => _model.Config.VocabSize;

    /// <summary>The KV cache (for inspection).</summary>
    internal KvCache Cache => _cache;

    /// <summary>The activation buffers (a profiler attaches its <see cref="StepProfile"/> here).</summary>
    internal InferenceState State => _state;

    /// <summary>
    /// Appends <paramref name="tokens"/> (processed in chunks, matrix × matrix) and returns the logits of the last one.
    /// The returned span is valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> tokens) => Prefill(tokens, default);

    /// <summary>
    /// Appends <paramref name="tokens"/>; when <paramref name="allLogits"/> is not empty it receives the logits of every
    /// token (<c>[tokens, vocab]</c>). Returns the logits of the last token.
    /// </summary>
    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> tokens, Span<float> allLogits)
    {
        if (tokens.IsEmpty) throw new GemmaException("Prefill needs at least one token.");
        if (!allLogits.IsEmpty && allLogits.Length < (long)tokens.Length * VocabSize)
            throw new ArgumentException($"allLogits must hold {tokens.Length}×{VocabSize} floats.", nameof(allLogits));
        if (Position + tokens.Length > ContextLength)
            throw new GemmaException($"The prompt needs {tokens.Length} positions but only {ContextLength - Position} of the context length {ContextLength} are left.");
        int chunk = _state.MaxChunk;
        for (int startIndex = 0; startIndex < tokens.Length; startIndex += chunk)
        {
            int n = Math.Min(chunk, tokens.Length - startIndex);
            Span<float> rows = allLogits.IsEmpty ? default : allLogits.Slice(startIndex * VocabSize, n * VocabSize);
            _model.Transformer.Forward(tokens.Slice(startIndex, n), _state, _cache, _pool, rows, lastLogits: startIndex + n == tokens.Length);
        }
        return _state.Logits;
    }

    /// <summary>Appends one token through the KV cache and returns its logits (valid until the next call).</summary>
    public ReadOnlySpan<float> Decode(int token)
    {
        ReadOnlySpan<int> one = [token];
        _model.Transformer.Forward(one, _state, _cache, _pool);
        return _state.Logits;
    }

    /// <summary>Forgets all positions.</summary>
    public void Reset() => _cache.Clear();

    /// <summary>
    /// True when <see cref="Truncate"/> can keep the first <paramref name="length"/> positions: always for 0 and for
    /// lengths at or beyond <see cref="Position"/>; once a sliding-window layer's ring has wrapped, otherwise only for
    /// the last prefill chunk of positions (earlier keys a later query would see were overwritten).
    /// </summary>
    public bool CanTruncateTo(int length) => _cache.CanTruncateTo(length);

    /// <summary>
    /// Forgets positions from <paramref name="length"/> on, keeping the prefix (0 forgets everything, like
    /// <see cref="Reset"/>). Check <see cref="CanTruncateTo"/> first.
    /// </summary>
    /// <exception cref="GemmaException">The prefix is no longer intact (see <see cref="CanTruncateTo"/>).</exception>
    public void Truncate(int length) => _cache.Truncate(length);

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Dispose();
    }
}
