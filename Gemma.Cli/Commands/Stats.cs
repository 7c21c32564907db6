using Gemma.Core.Generation;

namespace Gemma.Cli.Commands;

/// <summary>The one-line summary printed on stderr after a generation.</summary>
internal static class Stats
{
    public static void Print(GenerationStats s) =>
        Console.Error.WriteLine(
            $"[prompt {s.PromptTokens} tok ({s.PrefilledTokens} prefilled) in {s.PrefillTime.TotalMilliseconds:F0} ms, {s.PrefillTokensPerSecond:F1} tok/s | " +
            $"generated {s.GeneratedTokens} tok, {s.DecodeTokensPerSecond:F1} tok/s | time to first token {s.PrefillTime.TotalMilliseconds:F0} ms | stop: {s.FinishReason}]");
}
