using Gemma.Core.Generation;

namespace Gemma.Core.Chat;

/// <summary>Settings of a <see cref="GemmaChatClient"/>.</summary>
public sealed record GemmaChatClientOptions
{
    /// <summary>
    /// Model id reported in responses and in <c>ChatClientMetadata.DefaultModelId</c>; default: the name of the model
    /// folder (e.g. <c>gemma-2-2b-jpn-it</c>).
    /// </summary>
    public string? ModelId { get; init; }

    /// <summary>
    /// Most generations running at once, and so most KV caches (generators) the client keeps. A call beyond this waits
    /// (cancellably) for a generator to come free. Default 4. Each generator reserves a KV cache of
    /// <see cref="ContextLength"/> positions (pages are touched only as they fill).
    /// </summary>
    public int MaxConcurrentGenerations { get; init; } = 4;

    /// <summary>Context length of each generator's KV cache; default: the model's (<see cref="GemmaModel.CreateContext"/>).</summary>
    public int? ContextLength { get; init; }

    /// <summary>
    /// What to do when a conversation does not fit the context. False (default): a
    /// <see cref="ContextLengthExceededException"/> when the prompt leaves no room to answer. True: drop the oldest
    /// user/assistant exchanges (system messages and the last user message stay) until the prompt leaves room for the
    /// reply, <c>min(MaxOutputTokens, context / 4)</c> tokens; the exception only when the last message alone does not fit.
    /// <c>UsageDetails.InputTokenCount</c> counts the prompt actually used.
    /// </summary>
    public bool DropOldestMessages { get; init; }

    /// <summary>
    /// Sampling used for every option a call's <c>ChatOptions</c> leaves unset (llama.cpp's defaults unless changed;
    /// <c>MaxTokens</c> 512).
    /// </summary>
    public SamplingOptions DefaultSampling { get; init; } = new();

    internal void Validate()
    {
        if (MaxConcurrentGenerations < 1)
            throw new GemmaException($"GemmaChatClientOptions: MaxConcurrentGenerations must be at least 1, got {MaxConcurrentGenerations}.");
        if (ContextLength is < 2)
            throw new GemmaException($"GemmaChatClientOptions: ContextLength must be at least 2, got {ContextLength}.");
        ArgumentNullException.ThrowIfNull(DefaultSampling);
    }
}
