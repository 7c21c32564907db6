namespace Gemma.Core.Generation;

/// <summary>
/// How the next token is chosen from a row of logits. The defaults are llama.cpp's (<c>common_params_sampling</c>):
/// temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, last 64 tokens considered for penalties.
/// The filters are applied in llama.cpp's default order by <see cref="Sampler"/>:
/// logit bias → penalties → top-k → top-p → min-p → temperature → draw. See <c>docs/sampling.md</c>.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Greedy decoding: always the most likely token (ties → lowest id); penalties and logit bias still apply.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f, TopK = 0, TopP = 1f, MinP = 0f };

    /// <summary>
    /// Softmax temperature applied after the filters (logits are divided by it). 0 = greedy (argmax); &lt; 1 sharpens,
    /// &gt; 1 flattens. Default 0.8.
    /// </summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keeps only the <c>TopK</c> highest logits (ties → lower id first). 0 = off; 1 = greedy. Default 40.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>
    /// Nucleus sampling: keeps the smallest set of most likely tokens whose probability (softmax at temperature 1 over
    /// the tokens left by top-k) reaches <c>TopP</c>. Range (0, 1]; 1 = off. Default 0.95.
    /// </summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>
    /// Keeps tokens whose probability is at least <c>MinP</c> × the probability of the most likely remaining token
    /// (i.e. <c>logit ≥ max + ln MinP</c>). Range [0, 1]; 0 = off. Default 0.05.
    /// </summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>
    /// CTRL / llama.cpp repetition penalty for tokens seen in the last <see cref="PenaltyLastN"/> tokens: a positive logit
    /// is divided by it, a zero or negative one multiplied by it. Must be &gt; 0; 1 = off (default).
    /// </summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>OpenAI presence penalty: <c>logit -= PresencePenalty</c> for every token seen in the window. 0 = off (default).</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI frequency penalty: <c>logit -= FrequencyPenalty × count</c> (occurrences in the window). 0 = off (default).</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>How many of the most recent history tokens the penalties look at; -1 = the whole history, 0 = none. Default 64.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>
    /// Added to the logits of the given token ids before anything else; <see cref="float.NegativeInfinity"/> bans a token
    /// (it is never chosen, not even greedily). Null = none.
    /// </summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>
    /// Seed of the sampler's pseudo-random generator (xoshiro256**): the same seed, options and logits give the same
    /// tokens on every run and machine. Null = a random seed (reported by <see cref="Sampler.Seed"/>).
    /// </summary>
    public int? Seed { get; init; }

    /// <summary>Most tokens to generate (used by the generation loop, not by <see cref="Sampler"/>). Default 512.</summary>
    public int MaxTokens { get; init; } = 512;

    /// <summary>Strings that end generation when they appear in the output (used by the text layer). Null = none.</summary>
    public IReadOnlyList<string>? StopSequences { get; init; }

    /// <summary>
    /// A rule the output must follow (JSON Schema, any JSON, GBNF grammar or regex): tokens that cannot lead to a valid
    /// output are masked before top-k/top-p, the end token is allowed only when the output is complete, and as
    /// <see cref="MaxTokens"/> runs out the shortest valid completion is preferred. Null = unconstrained (default).
    /// </summary>
    public Constraints.OutputConstraint? Constraint { get; init; }

    /// <summary>True when these options always pick the most likely token (temperature 0 or top-k 1).</summary>
    public bool IsGreedy => Temperature == 0f || TopK == 1;

    /// <summary>True when a penalty would change any logit.</summary>
    public bool HasPenalties => PenaltyLastN != 0 && (RepetitionPenalty != 1f || PresencePenalty != 0f || FrequencyPenalty != 0f);

    /// <summary>Checks every value; throws <see cref="GemmaException"/> naming the option, its value and the allowed range.</summary>
    /// <param name="vocabSize">Vocabulary size of the model the options will be used with (bounds logit-bias ids).</param>
    public void Validate(int vocabSize)
    {
        if (vocabSize < 1) throw new GemmaException($"Sampling: vocabulary size must be at least 1, got {vocabSize}.");
        if (!float.IsFinite(Temperature) || Temperature < 0f)
            throw new GemmaException($"Sampling: Temperature must be a finite number ≥ 0 (0 = greedy), got {Temperature}.");
        if (TopK < 0) throw new GemmaException($"Sampling: TopK must be ≥ 0 (0 = off), got {TopK}.");
        if (!(TopP > 0f && TopP <= 1f)) throw new GemmaException($"Sampling: TopP must be in (0, 1] (1 = off), got {TopP}.");
        if (!(MinP >= 0f && MinP <= 1f)) throw new GemmaException($"Sampling: MinP must be in [0, 1] (0 = off), got {MinP}.");
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0f)
            throw new GemmaException($"Sampling: RepetitionPenalty must be a finite number > 0 (1 = off), got {RepetitionPenalty}.");
        if (!float.IsFinite(PresencePenalty)) throw new GemmaException($"Sampling: PresencePenalty must be finite, got {PresencePenalty}.");
        if (!float.IsFinite(FrequencyPenalty)) throw new GemmaException($"Sampling: FrequencyPenalty must be finite, got {FrequencyPenalty}.");
        if (PenaltyLastN < -1)
            throw new GemmaException($"Sampling: PenaltyLastN must be ≥ -1 (-1 = whole history, 0 = off), got {PenaltyLastN}.");
        if (MaxTokens < 0) throw new GemmaException($"Sampling: MaxTokens must be ≥ 0, got {MaxTokens}.");
        if (LogitBias != null)
        {
            foreach (KeyValuePair<int, float> bias in LogitBias)
            {
                if ((uint)bias.Key >= (uint)vocabSize)
                    throw new GemmaException($"Sampling: LogitBias token id {bias.Key} is outside the vocabulary [0, {vocabSize}).");
                if (float.IsNaN(bias.Value) || float.IsPositiveInfinity(bias.Value))
                    throw new GemmaException(
                        $"Sampling: LogitBias for token {bias.Key} must be finite or -∞ (ban), got {bias.Value}.");
            }
        }
        if (StopSequences != null)
        {
            for (int i = 0; i < StopSequences.Count; i++)
                if (string.IsNullOrEmpty(StopSequences[i]))
                    throw new GemmaException($"Sampling: StopSequences[{i}] is null or empty.");
        }
    }
}
