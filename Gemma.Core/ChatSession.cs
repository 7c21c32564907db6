using Gemma.Core.Chat;
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
/// <para>Context overflow: when the conversation plus room for the reply (<c>min(MaxTokens, context / 4)</c> tokens)
/// no longer fits the context, the oldest user/model exchanges are dropped (the system prompt is kept; see
/// <see cref="DroppedTurns"/>) and the remaining conversation is prefilled again. A message that does not fit even
/// alone is a <see cref="ContextLengthExceededException"/>, and the history stays as it was.</para>
/// <para>KV-cache reuse: each turn keeps the longest prefix of the cache that is still valid (see
/// <see cref="TextGenerator"/>); when sliding-window slots of it were overwritten, the whole prompt is prefilled again.
/// The reply is the same either way.</para>
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

    /// <summary>
    /// Sends a user message and streams the model's reply; the reply joins the history when it ends (also when it is
    /// cancelled or the caller stops reading: the partial reply is what the model said).
    /// </summary>
    /// <exception cref="ContextLengthExceededException">The message does not fit the context even without the older
    /// turns; the history is unchanged.</exception>
    public async IAsyncEnumerable<string> SendAsync(string message, SamplingOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        SamplingOptions sampling = options ?? _options.Sampling;
        sampling.Validate(_model.Config.VocabSize);
        GemmaChatMessage user = GemmaChatMessage.User(message);
        (int[] prompt, int dropped) = FitToContext(user, sampling.MaxTokens); // throws before the history changes
        List<GemmaChatMessage> before = [.. _history];
        _history.RemoveRange(0, dropped);
        DroppedTurns += dropped / 2;
        _history.Add(user);

        var reply = new System.Text.StringBuilder();
        bool failed = false;
        IAsyncEnumerator<string> pieces = _generator.GenerateAsync(prompt, sampling, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                try
                {
                    if (!await pieces.MoveNextAsync()) break;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    failed = true;
                    throw;
                }
                reply.Append(pieces.Current);
                yield return pieces.Current;
            }
        }
        finally
        {
            await pieces.DisposeAsync();
            if (failed)
            {
                // Nothing usable was said: the conversation is as before the call (the cache is checked against it next time).
                _history.Clear();
                _history.AddRange(before);
                DroppedTurns -= dropped / 2;
            }
            else
            {
                // Whatever was generated (even if cancelled) is part of the conversation, so the cache and history agree.
                _history.Add(GemmaChatMessage.Assistant(reply.ToString()));
            }
        }
    }

    /// <summary>Forgets the conversation and the KV cache.</summary>
    public void Reset()
    {
        _history.Clear();
        _generator.Reset();
        DroppedTurns = 0;
    }

    /// <summary>
    /// The prompt for the history plus <paramref name="user"/>, and how many of the oldest history messages (whole
    /// user/model exchanges) must be dropped so that it leaves room for the reply (<see cref="ConversationFit"/>).
    /// Changes nothing.
    /// </summary>
    private (int[] Prompt, int Dropped) FitToContext(GemmaChatMessage user, int replyBudget)
    {
        GemmaTokenizer tokenizer = _model.RequireTokenizer();
        int limit = _generator.Context.ContextLength;
        int room = ConversationFit.ReplyRoom(replyBudget, limit);
        int exchanges = _history.Count / 2; // the history holds user/model pairs
        var fit = ConversationFit.DropOldest(n => ChatTemplate.EncodeToIds(tokenizer, Conversation(2 * n, user)), exchanges, room, limit);
        if (fit is not { } f)
        {
            int alone = ChatTemplate.EncodeToIds(tokenizer, Conversation(2 * exchanges, user)).Length;
            throw new ContextLengthExceededException(
                $"The message needs {alone} tokens with the chat template, plus {room} for the reply; the context length is {limit}.",
                alone, limit);
        }
        return (f.Prompt, 2 * f.Dropped);
    }

    private List<GemmaChatMessage> Conversation(int dropped, GemmaChatMessage user)
    {
        var all = new List<GemmaChatMessage>(_history.Count - dropped + 2);
        if (!string.IsNullOrWhiteSpace(_options.SystemPrompt)) all.Add(GemmaChatMessage.System(_options.SystemPrompt));
        all.AddRange(_history.Skip(dropped));
        all.Add(user);
        return all;
    }

    /// <inheritdoc />
    public void Dispose() => _generator.Dispose();
}
