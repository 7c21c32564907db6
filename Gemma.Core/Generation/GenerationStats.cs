namespace Gemma.Core.Generation;

/// <summary>What one generation call did, for usage reporting and the CLI's stats line.</summary>
public sealed record GenerationStats
{
    /// <summary>Tokens of the whole prompt (conversation so far, for a chat turn).</summary>
    public int PromptTokens { get; init; }
    /// <summary>Prompt tokens actually run through the model (the rest were reused from the KV cache).</summary>
    public int PrefilledTokens { get; init; }
    /// <summary>Tokens generated (including a final end-of-turn token, which is not shown).</summary>
    public int GeneratedTokens { get; init; }
    /// <summary>Wall time of the prefill (time to first token).</summary>
    public TimeSpan PrefillTime { get; init; }
    /// <summary>Wall time of the decode loop.</summary>
    public TimeSpan DecodeTime { get; init; }
    /// <summary>Why generation stopped.</summary>
    public FinishReason FinishReason { get; init; }

    /// <summary>Prefill speed in tokens per second.</summary>
    public double PrefillTokensPerSecond => PrefillTime > TimeSpan.Zero ? PrefilledTokens / PrefillTime.TotalSeconds : 0;
    /// <summary>Decode speed in tokens per second (tokens after the first, over the decode time).</summary>
    public double DecodeTokensPerSecond => DecodeTime > TimeSpan.Zero ? Math.Max(GeneratedTokens - 1, 0) / DecodeTime.TotalSeconds : 0;
}
