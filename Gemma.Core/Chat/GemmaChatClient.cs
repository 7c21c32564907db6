using System.Runtime.CompilerServices;
using System.Text;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;
using Microsoft.Extensions.AI;

namespace Gemma.Core.Chat;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a <see cref="GemmaModel"/>: the chat abstraction .NET
/// applications, middleware (logging, caching, OpenTelemetry, chat reducers) and dependency injection already know.
/// </summary>
/// <remarks>
/// <para><b>Stateless, like the interface.</b> Each call gets the whole conversation; the client renders it with
/// <see cref="ChatTemplate"/> and generates the next assistant turn. It keeps no history.</para>
/// <para><b>Context overflow.</b> A conversation whose prompt leaves no room to answer (prompt tokens ≥ the context
/// length) is a <see cref="ContextLengthExceededException"/> naming both numbers (OpenAI's
/// <c>context_length_exceeded</c>); trim it, e.g. with a chat reducer, or opt in to
/// <see cref="GemmaChatClientOptions.DropOldestMessages"/>. A reply that reaches the end of the context stops with
/// <see cref="ChatFinishReason.Length"/>. The client stays usable after either.</para>
/// <para><b>KV-cache reuse.</b> The client keeps up to <see cref="GemmaChatClientOptions.MaxConcurrentGenerations"/>
/// generators, each with its own KV cache. A call whose <see cref="ChatOptions.ConversationId"/> names a conversation
/// gets that conversation's generator back, so only the new tokens are prefilled (the longest prefix whose
/// sliding-window keys are still cached; when there is none the prompt is prefilled from the start — the reply is the
/// same either way); the id is returned in
/// <see cref="ChatResponse.ConversationId"/>. It is only a cache key: the caller still sends the full history (the
/// client never stores messages). Calls without an id take the idle generator sharing the longest prefix with their
/// prompt. See <c>GeneratorPool</c> and <c>docs/api.md</c>.</para>
/// <para><b>Concurrency.</b> Thread-safe. Calls run in parallel, each in its own generator, and give the same result
/// as alone; calls beyond <see cref="GemmaChatClientOptions.MaxConcurrentGenerations"/> wait for a free generator.</para>
/// <para><b>Statistics.</b> Each response (and the last streaming update) carries the call's
/// <see cref="GenerationStats"/> in <c>AdditionalProperties[</c><see cref="StatsKey"/><c>]</c>.</para>
/// <para><b>Errors.</b> Invalid option values → <see cref="GemmaException"/>; non-text content or the tool role →
/// <see cref="NotSupportedException"/>; cancellation → <see cref="OperationCanceledException"/> within one token (the
/// client stays usable).</para>
/// </remarks>
public sealed class GemmaChatClient : IChatClient
{
    /// <summary>Key of the call's <see cref="GenerationStats"/> in a response's <c>AdditionalProperties</c>.</summary>
    public const string StatsKey = "gemma.stats";

    private readonly GemmaModel _model;
    private readonly bool _ownsModel;
    private readonly GemmaTokenizer _tokenizer;
    private readonly GemmaChatClientOptions _options;
    private readonly ChatStructuredOutput.Cache _constraints = new();
    private readonly GeneratorPool _pool;

    /// <summary>The client's generators (tests).</summary>
    internal GeneratorPool Pool => _pool;
    private readonly int _contextLength;
    private readonly ChatClientMetadata _metadata;

    /// <summary>
    /// A client over a loaded model, which it shares and does not dispose (the caller owns it; several clients and
    /// sessions may use one model).
    /// </summary>
    /// <exception cref="GemmaException">The model has no tokenizer or the options are invalid.</exception>
    public GemmaChatClient(GemmaModel model, GemmaChatClientOptions? options = null) : this(model, options, ownsModel: false) { }

    /// <summary>Loads the model folder at <paramref name="modelPath"/>; the client owns that model and disposes it.</summary>
    public GemmaChatClient(string modelPath, GemmaModelOptions? modelOptions = null, GemmaChatClientOptions? options = null)
        : this(GemmaModel.Load(modelPath, modelOptions), options, ownsModel: true) { }

    private GemmaChatClient(GemmaModel model, GemmaChatClientOptions? options, bool ownsModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        try
        {
            _options = options ?? new GemmaChatClientOptions();
            _options.Validate();
            _tokenizer = model.RequireTokenizer();
            _contextLength = model.ResolveContextLength(_options.ContextLength);
        }
        catch
        {
            if (ownsModel) model.Dispose();
            throw;
        }
        _model = model;
        _ownsModel = ownsModel;
        _pool = new GeneratorPool(_options.MaxConcurrentGenerations, () => new TextGenerator(_model, _contextLength));
        ModelId = _options.ModelId ?? DefaultModelId(model.Location);
        _metadata = new ChatClientMetadata("Gemma.NET", providerUri: null, defaultModelId: ModelId);
    }

    /// <summary>The model id reported in responses: <see cref="GemmaChatClientOptions.ModelId"/> or the model folder's name.</summary>
    public string ModelId { get; }

    /// <summary>The model this client generates with.</summary>
    public GemmaModel Model => _model;

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        var calls = new List<AIContent>();
        ChatResponseUpdate? last = null;
        await foreach (ChatResponseUpdate update in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            text.Append(update.Text);
            calls.AddRange(update.Contents.OfType<FunctionCallContent>());
            last = update;
        }
        // The stream always ends with a final update (finish reason, usage, stats) unless it threw.
        if (last is null) throw new InvalidOperationException("The stream ended without its final update.");
        var message = new Microsoft.Extensions.AI.ChatMessage(AIChatRole.Assistant, text.ToString()) { MessageId = last.MessageId };
        if (calls.Count > 0) message.Contents = calls;
        return new ChatResponse(message)
        {
            ResponseId = last.ResponseId,
            ConversationId = last.ConversationId,
            ModelId = ModelId,
            CreatedAt = last.CreatedAt,
            FinishReason = last.FinishReason,
            Usage = last.Contents.OfType<UsageContent>().Single().Details,
            AdditionalProperties = last.AdditionalProperties,
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        SamplingOptions sampling = ChatOptionsMapping.ToSamplingOptions(options, _options.DefaultSampling, _model.Config.VocabSize);
        ChatStructuredOutput.Plan structured = ChatStructuredOutput.Prepare(options, _constraints);
        if (structured.Constraint is not null) sampling = sampling with { Constraint = structured.Constraint };
        string? instructions = string.Join("\n\n", new[] { options?.Instructions, structured.Instructions }.Where(s => !string.IsNullOrWhiteSpace(s)));
        List<GemmaChatMessage> conversation = ChatOptionsMapping.ToGemmaMessages(messages, instructions);
        int[] prompt = FitToContext(conversation, sampling.MaxTokens);
        string? conversationId = options?.ConversationId;
        string responseId = Guid.NewGuid().ToString("N");
        string messageId = Guid.NewGuid().ToString("N");
        DateTimeOffset created = DateTimeOffset.UtcNow;

        GeneratorPool.Entry entry = await _pool.RentAsync(conversationId, prompt, cancellationToken).ConfigureAwait(false);
        GenerationStats? stats;
        try
        {
            var reply = new StringBuilder();
            await foreach (string piece in entry.Generator.GenerateAsync(prompt, sampling, cancellationToken).ConfigureAwait(false))
            {
                if (structured.ParsesCalls) { reply.Append(piece); continue; } // a call is only known once complete
                yield return new ChatResponseUpdate(AIChatRole.Assistant, piece)
                {
                    ResponseId = responseId, MessageId = messageId, ConversationId = conversationId,
                    ModelId = ModelId, CreatedAt = created,
                };
            }
            stats = entry.Generator.LastStats;
            if (structured.ParsesCalls && reply.Length > 0)
            {
                yield return new ChatResponseUpdate(AIChatRole.Assistant, [.. ChatStructuredOutput.ParseReplyContents(reply.ToString())])
                {
                    ResponseId = responseId, MessageId = messageId, ConversationId = conversationId,
                    ModelId = ModelId, CreatedAt = created,
                };
            }
        }
        finally
        {
            _pool.Return(entry, conversationId);
        }
        if (stats is null) throw new InvalidOperationException("The generator ended without statistics.");
        var usage = new UsageDetails
        {
            InputTokenCount = stats.PromptTokens,
            OutputTokenCount = stats.GeneratedTokens,
            TotalTokenCount = stats.PromptTokens + stats.GeneratedTokens,
            CachedInputTokenCount = stats.PromptTokens - stats.PrefilledTokens,
        };
        yield return new ChatResponseUpdate(AIChatRole.Assistant, new List<AIContent> { new UsageContent(usage) })
        {
            ResponseId = responseId, MessageId = messageId, ConversationId = conversationId,
            ModelId = ModelId, CreatedAt = created,
            FinishReason = ChatOptionsMapping.ToChatFinishReason(stats.FinishReason),
            AdditionalProperties = new AdditionalPropertiesDictionary { [StatsKey] = stats },
        };
    }

    /// <summary>
    /// The prompt of <paramref name="conversation"/>: whole, or with <see cref="GemmaChatClientOptions.DropOldestMessages"/>
    /// without as few of its oldest user/assistant exchanges as leave room for the reply (<see cref="ConversationFit"/>).
    /// </summary>
    /// <exception cref="ContextLengthExceededException">The prompt leaves no room for a single token.</exception>
    private int[] FitToContext(List<GemmaChatMessage> conversation, int maxTokens)
    {
        int[] prompt;
        if (_options.DropOldestMessages)
        {
            int first = conversation[0].Role == GemmaChatRole.System ? 1 : 0;
            int exchanges = (conversation.Count - first - 1) / 2; // user, assistant, ..., user: the last user turn stays
            int[] Encode(int dropped) => ChatTemplate.EncodeToIds(_tokenizer, [.. conversation.Take(first), .. conversation.Skip(first + 2 * dropped)]);
            var fit = ConversationFit.DropOldest(Encode, exchanges, ConversationFit.ReplyRoom(maxTokens, _contextLength), _contextLength);
            prompt = fit?.Prompt ?? Encode(exchanges);
        }
        else
        {
            prompt = ChatTemplate.EncodeToIds(_tokenizer, conversation);
        }
        if (prompt.Length >= _contextLength)
            throw new ContextLengthExceededException(
                $"This model's context length is {_contextLength} tokens, but the conversation needs {prompt.Length} with the chat template " +
                $"(context_length_exceeded). Drop old messages (e.g. with a chat reducer) or set GemmaChatClientOptions.DropOldestMessages.",
                prompt.Length, _contextLength);
        return prompt;
    }

    /// <summary>
    /// <see cref="ChatClientMetadata"/> (provider "Gemma.NET", the model id), the <see cref="GemmaModel"/>, or this
    /// client; null for anything else or any non-null <paramref name="serviceKey"/>.
    /// </summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(GemmaModel)) return _model;
        if (serviceType.IsInstanceOfType(this)) return this;
        return null;
    }

    /// <summary>
    /// Disposes the generators (KV caches); generations still running finish and then release theirs. The model is
    /// disposed only if this client loaded it (the path constructor).
    /// </summary>
    public void Dispose()
    {
        _pool.Dispose();
        if (_ownsModel) _model.Dispose();
    }

    private static string DefaultModelId(string location)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(location));
        return name.Length > 0 ? name : location;
    }
}
