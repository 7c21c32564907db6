namespace Gemma.Core;

/// <summary>
/// A prompt or conversation that does not fit the context window (OpenAI's <c>context_length_exceeded</c>): it
/// needs <see cref="PromptTokens"/> positions plus room to answer, and the context holds <see cref="ContextLength"/>.
/// Nothing was generated and the object that threw is still usable.
/// </summary>
public sealed class ContextLengthExceededException : GemmaException
{
    /// <summary>Creates the exception; the message names both numbers.</summary>
    public ContextLengthExceededException(string message, int promptTokens, int contextLength) : base(message)
    {
        PromptTokens = promptTokens;
        ContextLength = contextLength;
    }

    /// <summary>Tokens of the prompt (with the chat template, when there is one).</summary>
    public int PromptTokens { get; }

    /// <summary>The context length, in tokens.</summary>
    public int ContextLength { get; }
}
