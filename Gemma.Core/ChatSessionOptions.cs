using Gemma.Core.Generation;

namespace Gemma.Core;

/// <summary>Settings of a <see cref="ChatSession"/>.</summary>
public sealed record ChatSessionOptions
{
    /// <summary>Instructions folded into the first user turn (Gemma has no system role); null for none.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>Context length of the session's KV cache; default: the model's.</summary>
    public int? ContextLength { get; init; }

    /// <summary>Sampling used when a call passes none.</summary>
    public SamplingOptions Sampling { get; init; } = new();
}
