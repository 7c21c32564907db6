namespace Gemma.Core.Generation;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model emitted an end-of-sequence or <c>&lt;end_of_turn&gt;</c> token.</summary>
    EndOfTurn,
    /// <summary>One of the stop sequences appeared in the text (it is not part of the output).</summary>
    StopSequence,
    /// <summary>The token budget (<see cref="SamplingOptions.MaxTokens"/>) was used up.</summary>
    MaxTokens,
    /// <summary>The context length was reached.</summary>
    ContextFull,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
}
