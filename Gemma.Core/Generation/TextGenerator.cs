using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using Gemma.Core.Constraints;
using Gemma.Core.Tokenization;

namespace Gemma.Core.Generation;

/// <summary>
/// Generates text for one sequence: feeds prompt tokens into an <see cref="InferenceContext"/>, samples, decodes
/// one token at a time through the KV cache and streams complete UTF-8 text. Stops on the model's end-of-sequence
/// ids, <c>&lt;end_of_turn&gt;</c>, a stop sequence, the token budget, the context length or cancellation.
/// Keeps the ids that are in the KV cache, so a caller can reuse a shared prefix on the next call.
/// </summary>
public sealed class TextGenerator : IDisposable
{
    private readonly GemmaModel _model;
    private readonly GemmaTokenizer _tokenizer;
    private readonly InferenceContext _context;
    private readonly HashSet<int> _endIds;
    private readonly List<int> _cached = new(); // ids whose keys/values are in _context's cache, in order

    /// <summary>Creates a generator with its own context (KV cache).</summary>
    public TextGenerator(GemmaModel model, int? contextLength = null)
    {
        _model = model;
        _tokenizer = model.Tokenizer ?? throw new GemmaException($"{model.Location}: the model has no tokenizer (tokenizer.json or tokenizer.model), so it cannot generate text.");
        _context = model.CreateContext(contextLength);
        _endIds = [.. model.Config.EosTokenIds, _tokenizer.EosId];
        if (_tokenizer.EndOfTurnId >= 0) _endIds.Add(_tokenizer.EndOfTurnId);
    }

    /// <summary>The context (KV cache) this generator runs in.</summary>
    public InferenceContext Context => _context;

    /// <summary>Ids currently held in the KV cache.</summary>
    public IReadOnlyList<int> CachedTokens => _cached;

    /// <summary>Statistics of the last <see cref="Generate"/> call.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>Ids that end a generation.</summary>
    public IReadOnlySet<int> EndIds => _endIds;

    /// <summary>Forgets the KV cache.</summary>
    public void Reset()
    {
        _context.Reset();
        _cached.Clear();
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> (the complete token sequence, e.g. the whole conversation). The longest
    /// prefix already in the KV cache is reused; only the rest is prefilled. Yields text as it completes.
    /// </summary>
    public IEnumerable<string> Generate(IReadOnlyList<int> prompt, SamplingOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(_model.Config.VocabSize);
        if (prompt.Count == 0) throw new GemmaException("The prompt is empty: at least one token (e.g. <bos>) is needed.");
        foreach (int id in prompt)
            if ((uint)id >= (uint)_model.Config.VocabSize) throw new GemmaException($"Prompt token id {id} is outside the vocabulary.");
        if (prompt.Count >= _context.ContextLength)
            throw new ContextLengthExceededException(
                $"The prompt has {prompt.Count} tokens but the context length is {_context.ContextLength}: no room to generate.",
                prompt.Count, _context.ContextLength);
        return Run(prompt, options, cancellationToken);
    }

    private IEnumerable<string> Run(IReadOnlyList<int> prompt, SamplingOptions options, CancellationToken ct)
    {
        var sampler = new Sampler(options, _model.Config.VocabSize);
        ConstrainedSampler? constrained = options.Constraint is null ? null
            : new ConstrainedSampler(options.Constraint, _tokenizer, _endIds, _model.Config.VocabSize, options.MaxTokens);
        var detokenizer = new StreamingDetokenizer(_tokenizer);
        var stops = new StopSequenceMatcher(options.StopSequences);
        var clock = Stopwatch.StartNew();
        ct.ThrowIfCancellationRequested();

        int reused = ReusablePrefix(prompt);
        int[] fresh = prompt.Skip(reused).ToArray();
        ReadOnlySpan<float> logits = PrefillFresh(fresh);
        _cached.AddRange(fresh);
        TimeSpan prefillTime = clock.Elapsed;
        clock.Restart();

        int generated = 0;
        FinishReason reason = FinishReason.MaxTokens;
        var history = new List<int>(prompt.Count + options.MaxTokens);
        history.AddRange(prompt);
        while (true)
        {
            if (generated >= options.MaxTokens) { reason = FinishReason.MaxTokens; break; }
            if (ct.IsCancellationRequested) { reason = FinishReason.Cancelled; break; }
            int next = constrained is null
                ? sampler.Sample(logits, CollectionsMarshal.AsSpan(history))
                : constrained.Sample(sampler, logits, CollectionsMarshal.AsSpan(history), options.MaxTokens - generated);
            generated++;
            if (_endIds.Contains(next)) { reason = FinishReason.EndOfTurn; break; }
            constrained?.Accept(next);
            history.Add(next);
            string text = stops.Push(detokenizer.Append(next));
            if (text.Length > 0) yield return text;
            if (stops.Stopped) { reason = FinishReason.StopSequence; break; }
            if (constrained is { IsFinished: true }) { reason = FinishReason.EndOfTurn; break; } // nothing may follow
            if (generated >= options.MaxTokens) { reason = FinishReason.MaxTokens; break; } // don't decode a token nobody reads
            if (_context.Position >= _context.ContextLength) { reason = FinishReason.ContextFull; break; }
            logits = _context.Decode(next);
            _cached.Add(next);
        }
        if (reason != FinishReason.StopSequence)
        {
            string tail = stops.Push(detokenizer.Flush()) + stops.Flush();
            if (tail.Length > 0) yield return tail;
        }
        LastStats = new GenerationStats
        {
            PromptTokens = prompt.Count, PrefilledTokens = fresh.Length, GeneratedTokens = generated,
            PrefillTime = prefillTime, DecodeTime = clock.Elapsed, FinishReason = reason,
        };
    }

    /// <summary>
    /// Async form of <see cref="Generate"/>: the work runs on a thread-pool thread between awaits; cancellation ends
    /// the stream within one token with an <see cref="OperationCanceledException"/> (the KV cache stays consistent,
    /// so the generator can be used again).
    /// </summary>
    public async IAsyncEnumerable<string> GenerateAsync(IReadOnlyList<int> prompt, SamplingOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IEnumerable<string> texts = Generate(prompt, options, cancellationToken);
        await Task.Yield();
        foreach (string text in texts) yield return text;
        if (LastStats?.FinishReason == FinishReason.Cancelled) throw new OperationCanceledException(cancellationToken);
    }

    /// <summary>
    /// Length of the prefix of <paramref name="prompt"/> that is in the KV cache and can be kept (changes nothing):
    /// the common prefix of the cached ids and the prompt, less its last token (its logits start the generation, so
    /// at least one prompt token is always prefilled), or 0 when sliding-window slots of that prefix were already
    /// overwritten (<see cref="Model.KvCache.CanTruncateTo"/>) and the prompt must be prefilled from the start.
    /// </summary>
    internal int KeepablePrefix(IReadOnlyList<int> prompt)
    {
        int common = 0, limit = Math.Min(Math.Min(_cached.Count, _context.Position), prompt.Count - 1);
        while (common < limit && _cached[common] == prompt[common]) common++;
        return _context.Cache.LongestKeepablePrefix(common);
    }

    /// <summary>
    /// Rewinds the KV cache to the <see cref="KeepablePrefix"/> of <paramref name="prompt"/> and returns its length.
    /// A cache is only an optimisation: when nothing can be kept it is cleared, never an error.
    /// </summary>
    private int ReusablePrefix(IReadOnlyList<int> prompt)
    {
        int keep = KeepablePrefix(prompt);
        _context.Truncate(keep); // 0 clears the cache
        _cached.RemoveRange(keep, _cached.Count - keep);
        return keep;
    }

    private ReadOnlySpan<float> PrefillFresh(int[] fresh) => _context.Prefill(fresh);

    /// <inheritdoc />
    public void Dispose() => _context.Dispose();
}
