using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Core;

/// <summary>
/// A multi-turn conversation with one model. Each <see cref="SendAsync"/> appends the user's message, renders the
/// whole conversation with the Gemma chat template and generates the model's reply; the KV cache keeps the
/// conversation, so a new turn only prefills the tokens that are new (<see cref="LastStats"/> counts them).
/// Not thread-safe: use one session per conversation; many sessions can share one <see cref="GemmaModel"/>.
/// </summary>
/// <remarks>
/// Context overflow: when the conversation plus the reply budget no longer fits the context, the oldest
/// user/model exchanges are dropped (the system prompt is kept) and the remaining conversation is prefilled again.
/// A single message that alone does not fit is an error.
/// </remarks>
public sealed class ChatSession : IDisposable
{
    private readonly GemmaModel _model;
    private readonly ChatSessionOptions _options;
    private readonly TextGenerator _generator;
    private readonly List<GemmaChatMessage> _history = new();

    internal ChatSession(GemmaModel model, ChatSessionOptions options)
    {
        _model = model;
        _options = options;
        _generator = new TextGenerator(model, options.ContextLength);
    }

    /// <summary>The conversation so far (user and model turns, without the system prompt).</summary>
    public IReadOnlyList<GemmaChatMessage> History => _history;

    /// <summary>Statistics of the last reply.</summary>
    public GenerationStats? LastStats => _generator.LastStats;

    /// <summary>Exchanges dropped so far to fit the context.</summary>
    public int DroppedTurns { get; private set; }

    /// <summary>Sends a user message and streams the model's reply; the reply joins the history when it ends.</summary>
    public async IAsyncEnumerable<string> SendAsync(string message, SamplingOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        SamplingOptions sampling = options ?? _options.Sampling;
        sampling.Validate(_model.Config.VocabSize);
        _history.Add(GemmaChatMessage.User(message));
        int[] prompt;
        try
        {
            prompt = FitToContext(sampling.MaxTokens);
        }
        catch
        {
            _history.RemoveAt(_history.Count - 1);
            throw;
        }
        var reply = new System.Text.StringBuilder();
        try
        {
            await foreach (string text in _generator.GenerateAsync(prompt, sampling, cancellationToken))
            {
                reply.Append(text);
                yield return text;
            }
        }
        finally
        {
            // Whatever was generated (even if cancelled) is part of the conversation, so the cache and history agree.
            _history.Add(GemmaChatMessage.Assistant(reply.ToString()));
        }
    }

    /// <summary>Forgets the conversation and the KV cache.</summary>
    public void Reset()
    {
        _history.Clear();
        _generator.Reset();
        DroppedTurns = 0;
    }

    private int[] FitToContext(int replyBudget)
    {
        GemmaTokenizer tokenizer = _model.RequireTokenizer();
        int limit = _generator.Context.ContextLength;
        while (true)
        {
            int[] ids = ChatTemplate.EncodeToIds(tokenizer, WithSystem());
            if (ids.Length + Math.Max(1, Math.Min(replyBudget, limit / 4)) <= limit) return ids;
            if (_history.Count <= 1)
                throw new GemmaException($"The message needs {ids.Length} tokens with the template; the context length is {limit}.");
            _history.RemoveRange(0, Math.Min(2, _history.Count - 1)); // oldest user + model exchange
            DroppedTurns++;
        }
    }

    private List<GemmaChatMessage> WithSystem()
    {
        var all = new List<GemmaChatMessage>(_history.Count + 1);
        if (!string.IsNullOrWhiteSpace(_options.SystemPrompt)) all.Add(GemmaChatMessage.System(_options.SystemPrompt));
        all.AddRange(_history);
        return all;
    }

    /// <inheritdoc />
    public void Dispose() => _generator.Dispose();
}
