using System.CommandLine;
using Gemma.Core.Generation;

namespace Gemma.Cli.Commands;

/// <summary>Sampling options shared by <c>generate</c> and <c>chat</c>; defaults are <see cref="SamplingOptions"/>'s.</summary>
internal sealed class SamplingCliOptions
{
    private static readonly SamplingOptions Defaults = new();

    public Option<int> MaxTokens { get; } = new("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
    public Option<float> Temperature { get; } = new("--temperature") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => Defaults.Temperature };
    public Option<int> TopK { get; } = new("--top-k") { Description = "Keep the k most likely tokens; 0 = off.", DefaultValueFactory = _ => Defaults.TopK };
    public Option<float> TopP { get; } = new("--top-p") { Description = "Nucleus sampling threshold in (0, 1]; 1 = off.", DefaultValueFactory = _ => Defaults.TopP };
    public Option<float> MinP { get; } = new("--min-p") { Description = "Drop tokens below min-p × the best probability; 0 = off.", DefaultValueFactory = _ => Defaults.MinP };
    public Option<float> RepeatPenalty { get; } = new("--repeat-penalty") { Description = "Repetition penalty over the last --repeat-last-n tokens; 1 = off.", DefaultValueFactory = _ => Defaults.RepetitionPenalty };
    public Option<int> RepeatLastN { get; } = new("--repeat-last-n") { Description = "Tokens the penalties look back over; -1 = all.", DefaultValueFactory = _ => Defaults.PenaltyLastN };
    public Option<float> PresencePenalty { get; } = new("--presence-penalty") { Description = "Subtracted once from tokens already present.", DefaultValueFactory = _ => 0f };
    public Option<float> FrequencyPenalty { get; } = new("--frequency-penalty") { Description = "Subtracted per occurrence.", DefaultValueFactory = _ => 0f };
    public Option<int?> Seed { get; } = new("--seed", "-s") { Description = "Random seed (same seed, same output); default random." };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when this text appears (repeatable).", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command command)
    {
        foreach (Option o in new Option[] { MaxTokens, Temperature, TopK, TopP, MinP, RepeatPenalty, RepeatLastN, PresencePenalty, FrequencyPenalty, Seed, Stop })
            command.Add(o);
    }

    /// <summary>
    /// The options as given. Each is checked by the library's <see cref="SamplingOptions.Validate"/> on its own, so that
    /// an out-of-range value is a usage error naming the option, with the library's message.
    /// </summary>
    public SamplingOptions Read(ParseResult parse)
    {
        SamplingOptions o = ReadUnchecked(parse);
        Check(MaxTokens, new() { MaxTokens = o.MaxTokens });
        Check(Temperature, new() { Temperature = o.Temperature });
        Check(TopK, new() { TopK = o.TopK });
        Check(TopP, new() { TopP = o.TopP });
        Check(MinP, new() { MinP = o.MinP });
        Check(RepeatPenalty, new() { RepetitionPenalty = o.RepetitionPenalty });
        Check(RepeatLastN, new() { PenaltyLastN = o.PenaltyLastN });
        Check(PresencePenalty, new() { PresencePenalty = o.PresencePenalty });
        Check(FrequencyPenalty, new() { FrequencyPenalty = o.FrequencyPenalty });
        Check(Stop, new() { StopSequences = o.StopSequences });
        return o;
    }

    private static void Check(Option option, SamplingOptions single)
    {
        try
        {
            single.Validate(int.MaxValue);
        }
        catch (Core.GemmaException e)
        {
            throw new UsageException($"{option.Name}: {e.Message}");
        }
    }

    private SamplingOptions ReadUnchecked(ParseResult parse) => new()
    {
        MaxTokens = parse.GetValue(MaxTokens),
        Temperature = parse.GetValue(Temperature),
        TopK = parse.GetValue(TopK),
        TopP = parse.GetValue(TopP),
        MinP = parse.GetValue(MinP),
        RepetitionPenalty = parse.GetValue(RepeatPenalty),
        PenaltyLastN = parse.GetValue(RepeatLastN),
        PresencePenalty = parse.GetValue(PresencePenalty),
        FrequencyPenalty = parse.GetValue(FrequencyPenalty),
        Seed = parse.GetValue(Seed),
        StopSequences = parse.GetValue(Stop) is { Length: > 0 } stops ? stops : null,
    };
}
