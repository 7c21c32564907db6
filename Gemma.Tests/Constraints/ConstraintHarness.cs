using System.Text;
using Gemma.Core.Constraints;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Tests.Constraints;

/// <summary>
/// Drives <see cref="ConstrainedSampler"/> the way <see cref="TextGenerator"/> does, but with random logits instead of
/// a model: the cheapest way to explore many outputs of a grammar at the real vocabulary.
/// </summary>
internal static class ConstraintHarness
{
    public sealed record Result(string Text, bool Finished, int Tokens);

    public static Result Run(OutputConstraint constraint, GemmaTokenizer tokenizer, int seed, int maxTokens, float temperature = 1.5f)
    {
        int vocab = tokenizer.VocabularySize;
        int[] endIds = tokenizer.EndOfTurnId >= 0 ? [tokenizer.EosId, tokenizer.EndOfTurnId] : [tokenizer.EosId];
        var options = new SamplingOptions { Temperature = temperature, TopK = 40, TopP = 1f, MinP = 0f, Seed = seed, MaxTokens = maxTokens, Constraint = constraint };
        var sampler = new Sampler(options, vocab);
        var constrained = new ConstrainedSampler(constraint, tokenizer, endIds, vocab, maxTokens);
        var rng = new Random(seed);
        var logits = new float[vocab];
        var bytes = new List<byte>();
        int generated = 0;
        bool finished = false;
        while (generated < maxTokens)
        {
            for (int i = 0; i < vocab; i++) logits[i] = (float)(rng.NextDouble() * 4);
            // Make short tokens and structure likely enough that random walks end in reasonable time.
            int next = constrained.Sample(sampler, logits, default, maxTokens - generated);
            generated++;
            if (endIds.Contains(next)) { finished = true; break; }
            constrained.Accept(next);
            bytes.AddRange(tokenizer.GetUtf8(next, skipControlTokens: true).ToArray());
            if (constrained.IsFinished) { finished = true; break; }
        }
        return new Result(Encoding.UTF8.GetString(bytes.ToArray()), finished, generated);
    }
}
