using Gemma.Core;
using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Sampling;

/// <summary>Logit bias and penalties change the logits exactly as specified (values worked out by hand).</summary>
[Category("Sampling")]
public class SamplerPenaltyTests
{
    private static readonly float[] Logits = [2f, -1f, 0.5f, 3f, -2f, 1f, 0f];
    // Counts in the history: id 0 three times, id 1 twice, id 3 and id 6 once.
    private static readonly int[] History = [0, 1, 1, 3, 0, 6, 0];

    private static float[] Adjust(SamplingOptions options, int[] history, float[]? logits = null) =>
        new Sampler(options with { Seed = 1 }, 7).AdjustLogits(logits ?? Logits, history).ToArray();

    [Test]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNonPositiveLogits()
    {
        // 2/2 = 1; -1·2 = -2; 3/2 = 1.5; 0·2 = 0; unseen ids unchanged.
        float[] actual = Adjust(new SamplingOptions { RepetitionPenalty = 2f }, History);
        Assert.That(actual, Is.EqualTo(new[] { 1f, -2f, 0.5f, 1.5f, -2f, 1f, 0f }));
    }

    [Test]
    public void PresenceAndFrequencyPenaltiesSubtract()
    {
        // presence 0.5, frequency 0.25: id 0: 2 - (0.5 + 3·0.25) = 0.75; id 1: -1 - (0.5 + 0.5) = -2;
        // id 3: 3 - 0.75 = 2.25; id 6: 0 - 0.75 = -0.75.
        float[] actual = Adjust(new SamplingOptions { PresencePenalty = 0.5f, FrequencyPenalty = 0.25f }, History);
        Assert.That(actual, Is.EqualTo(new[] { 0.75f, -2f, 0.5f, 2.25f, -2f, 1f, -0.75f }));
    }

    [Test]
    public void AllThreePenaltiesRepetitionFirst()
    {
        // repetition 2 then presence 0.5 + frequency 0.25·count:
        // id 0: 1 - 1.25 = -0.25; id 1: -2 - 1 = -3; id 3: 1.5 - 0.75 = 0.75; id 6: 0 - 0.75 = -0.75.
        var o = new SamplingOptions { RepetitionPenalty = 2f, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f };
        Assert.That(Adjust(o, History), Is.EqualTo(new[] { -0.25f, -3f, 0.5f, 0.75f, -2f, 1f, -0.75f }));
    }

    // Repetition 2, presence 0.5, frequency 0.25 over the last N tokens of [0, 1, 1, 3, 0, 6, 0].
    // N = 2, window [6, 0]: id 0 once: 2/2 - (0.5 + 0.25) = 0.25; id 6 once: 0·2 - 0.75 = -0.75.
    [TestCase(2, new[] { 0.25f, -1f, 0.5f, 3f, -2f, 1f, -0.75f })]
    // N = 3, window [0, 6, 0]: id 0 twice: 2/2 - (0.5 + 0.5) = 0; id 6 once: -0.75.
    [TestCase(3, new[] { 0f, -1f, 0.5f, 3f, -2f, 1f, -0.75f })]
    // N = -1 (whole history) and N longer than the history: as in AllThreePenaltiesRepetitionFirst.
    [TestCase(-1, new[] { -0.25f, -3f, 0.5f, 0.75f, -2f, 1f, -0.75f })]
    [TestCase(100, new[] { -0.25f, -3f, 0.5f, 0.75f, -2f, 1f, -0.75f })]
    // N = 0: off.
    [TestCase(0, new[] { 2f, -1f, 0.5f, 3f, -2f, 1f, 0f })]
    public void OnlyTheLastNTokensCount(int lastN, float[] expected)
    {
        var o = new SamplingOptions { RepetitionPenalty = 2f, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f, PenaltyLastN = lastN };
        Assert.That(Adjust(o, History), Is.EqualTo(expected));
    }

    [Test]
    public void BiasIsAddedBeforeThePenalties()
    {
        // Bias +2 on id 0, repetition 2, history [0]: (2 + 2) / 2 = 2 (penalty first would give 2/2 + 2 = 3).
        var o = new SamplingOptions { RepetitionPenalty = 2f, LogitBias = new Dictionary<int, float> { [0] = 2f, [4] = -0.5f } };
        Assert.That(Adjust(o, [0]), Is.EqualTo(new[] { 2f, -1f, 0.5f, 3f, -2.5f, 1f, 0f }));
    }

    [Test]
    public void CountsStartFromZeroOnEveryCall()
    {
        var sampler = new Sampler(new SamplingOptions { FrequencyPenalty = 1f, Seed = 1 }, 7);
        for (int call = 0; call < 3; call++)
        {
            // id 0 three times: 2 - 3 = -1 on every call, not -1, -4, -7.
            Assert.That(sampler.AdjustLogits(Logits, History).ToArray()[0], Is.EqualTo(-1f), $"call {call}");
        }
    }

    [Test]
    public void AHistoryTokenOutsideTheVocabularyThrowsAndLeavesNoTrace()
    {
        var sampler = new Sampler(new SamplingOptions { FrequencyPenalty = 1f, Seed = 1 }, 7);
        var e = Assert.Throws<GemmaException>(() => sampler.AdjustLogits(Logits, [0, 0, 7]))!;
        Assert.That(e.Message, Does.Contain("history token 7"));
        Assert.Throws<GemmaException>(() => sampler.AdjustLogits(Logits, [-1]));
        Assert.That(sampler.AdjustLogits(Logits, [0]).ToArray()[0], Is.EqualTo(1f));  // 2 - 1: no leftover counts
    }

    [Test]
    public void HistoryIsIgnoredWithoutPenalties()
    {
        var sampler = new Sampler(SamplingOptions.Greedy, 7);
        Assert.That(sampler.AdjustLogits(Logits, [0, 99, -5]).ToArray(), Is.EqualTo(Logits));
    }

    [Test]
    public void APenaltyChangesTheGreedyChoice()
    {
        // [2.0, 1.9], history [0], repetition 1.1: 2/1.1 = 1.818 < 1.9, so id 1.
        float[] logits = [2.0f, 1.9f];
        Assert.That(new Sampler(SamplingOptions.Greedy, 2).Sample(logits, [0]), Is.EqualTo(0));
        Assert.That(new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 1.1f }, 2).Sample(logits, [0]), Is.EqualTo(1));
        // Presence 0.05: 1.95 > 1.9 stays 0; presence 0.2: 1.8 < 1.9 gives 1.
        Assert.That(new Sampler(SamplingOptions.Greedy with { PresencePenalty = 0.05f }, 2).Sample(logits, [0]), Is.EqualTo(0));
        Assert.That(new Sampler(SamplingOptions.Greedy with { PresencePenalty = 0.2f }, 2).Sample(logits, [0]), Is.EqualTo(1));
    }
}
