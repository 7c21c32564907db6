using Gemma.Core;
using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Sampling;

[Category("Sampling")]
public class SamplingOptionsTests
{
    [Test]
    public void DefaultsAreLlamaCppDefaults()
    {
        var o = new SamplingOptions();
        Assert.Multiple(() =>
        {
            Assert.That(o.Temperature, Is.EqualTo(0.8f));
            Assert.That(o.TopK, Is.EqualTo(40));
            Assert.That(o.TopP, Is.EqualTo(0.95f));
            Assert.That(o.MinP, Is.EqualTo(0.05f));
            Assert.That(o.RepetitionPenalty, Is.EqualTo(1f));
            Assert.That(o.PresencePenalty, Is.EqualTo(0f));
            Assert.That(o.FrequencyPenalty, Is.EqualTo(0f));
            Assert.That(o.PenaltyLastN, Is.EqualTo(64));
            Assert.That(o.LogitBias, Is.Null);
            Assert.That(o.Seed, Is.Null);
            Assert.That(o.MaxTokens, Is.EqualTo(512));
            Assert.That(o.StopSequences, Is.Null);
            Assert.That(o.IsGreedy, Is.False);
            Assert.That(o.HasPenalties, Is.False);
        });
        Assert.DoesNotThrow(() => o.Validate(256000));
    }

    [Test]
    public void GreedyPresetIsGreedyWithEveryFilterOff()
    {
        SamplingOptions g = SamplingOptions.Greedy;
        Assert.That((g.Temperature, g.TopK, g.TopP, g.MinP, g.IsGreedy), Is.EqualTo((0f, 0, 1f, 0f, true)));
        Assert.That(new SamplingOptions { TopK = 1 }.IsGreedy, Is.True);
    }

    [Test]
    public void HasPenaltiesOnlyWhenOneIsSetAndTheWindowIsNotEmpty()
    {
        Assert.That(new SamplingOptions { RepetitionPenalty = 1.1f }.HasPenalties, Is.True);
        Assert.That(new SamplingOptions { PresencePenalty = 0.5f }.HasPenalties, Is.True);
        Assert.That(new SamplingOptions { FrequencyPenalty = -0.5f }.HasPenalties, Is.True);
        Assert.That(new SamplingOptions { RepetitionPenalty = 1.1f, PenaltyLastN = 0 }.HasPenalties, Is.False);
    }

    private static IEnumerable<TestCaseData> BadOptions()
    {
        TestCaseData Case(string name, SamplingOptions o, string expected) => new TestCaseData(o, expected).SetName("Rejects " + name);
        yield return Case("negative temperature", new() { Temperature = -0.1f }, "Temperature");
        yield return Case("NaN temperature", new() { Temperature = float.NaN }, "Temperature");
        yield return Case("infinite temperature", new() { Temperature = float.PositiveInfinity }, "Temperature");
        yield return Case("negative top-k", new() { TopK = -1 }, "TopK");
        yield return Case("top-p 0", new() { TopP = 0f }, "TopP");
        yield return Case("top-p above 1", new() { TopP = 1.01f }, "TopP");
        yield return Case("NaN top-p", new() { TopP = float.NaN }, "TopP");
        yield return Case("negative min-p", new() { MinP = -0.01f }, "MinP");
        yield return Case("min-p above 1", new() { MinP = 1.5f }, "MinP");
        yield return Case("NaN min-p", new() { MinP = float.NaN }, "MinP");
        yield return Case("repetition penalty 0", new() { RepetitionPenalty = 0f }, "RepetitionPenalty");
        yield return Case("negative repetition penalty", new() { RepetitionPenalty = -1f }, "RepetitionPenalty");
        yield return Case("NaN repetition penalty", new() { RepetitionPenalty = float.NaN }, "RepetitionPenalty");
        yield return Case("NaN presence penalty", new() { PresencePenalty = float.NaN }, "PresencePenalty");
        yield return Case("infinite frequency penalty", new() { FrequencyPenalty = float.NegativeInfinity }, "FrequencyPenalty");
        yield return Case("penalty window below -1", new() { PenaltyLastN = -2 }, "PenaltyLastN");
        yield return Case("negative max tokens", new() { MaxTokens = -1 }, "MaxTokens");
        yield return Case("bias id = vocab", new() { LogitBias = new Dictionary<int, float> { [100] = 1f } }, "token id 100");
        yield return Case("negative bias id", new() { LogitBias = new Dictionary<int, float> { [-1] = 1f } }, "token id -1");
        yield return Case("NaN bias", new() { LogitBias = new Dictionary<int, float> { [3] = float.NaN } }, "LogitBias");
        yield return Case("+inf bias", new() { LogitBias = new Dictionary<int, float> { [3] = float.PositiveInfinity } }, "LogitBias");
        yield return Case("empty stop sequence", new() { StopSequences = ["</s>", ""] }, "StopSequences[1]");
    }

    [TestCaseSource(nameof(BadOptions))]
    public void ValidateRejects(SamplingOptions options, string expected)
    {
        var e = Assert.Throws<GemmaException>(() => options.Validate(100))!;
        Assert.That(e.Message, Does.Contain(expected));
        // The sampler validates too.
        Assert.Throws<GemmaException>(() => _ = new Sampler(options, 100));
    }

    [Test]
    public void ValidateAcceptsTheEdgesOfEveryRange()
    {
        var o = new SamplingOptions
        {
            Temperature = 0f, TopK = 0, TopP = 1f, MinP = 1f, RepetitionPenalty = 1e-3f, PresencePenalty = -2f,
            FrequencyPenalty = 2f, PenaltyLastN = -1, MaxTokens = 0, Seed = int.MinValue,
            LogitBias = new Dictionary<int, float> { [0] = float.NegativeInfinity, [99] = -100f },
            StopSequences = ["<end_of_turn>"],
        };
        Assert.DoesNotThrow(() => o.Validate(100));
        Assert.DoesNotThrow(() => new SamplingOptions { TopK = 1000 }.Validate(100));  // larger than the vocabulary: all
    }

    [Test]
    public void RejectsAnEmptyVocabulary()
    {
        var e = Assert.Throws<GemmaException>(() => new SamplingOptions().Validate(0))!;
        Assert.That(e.Message, Does.Contain("vocabulary size"));
    }
}
