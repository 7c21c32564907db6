using Gemma.Core.Generation;
using NUnit.Framework;
using static Gemma.Tests.Sampling.SamplingTestHelpers;

namespace Gemma.Tests.Sampling;

/// <summary>
/// Each truncation filter on hand-made logits: the survivors are worked out by hand in the comments, then checked by
/// drawing many times (only survivors appear, every survivor appears, in the renormalised proportions).
/// </summary>
[Category("Sampling")]
public class SamplerFilterTests
{
    private const int Draws = 20000;
    private const double Tolerance = 0.02;  // ~6 standard deviations of a frequency at 20000 draws

    // Logits whose softmax at temperature 1 is exactly [0.5, 0.3, 0.15, 0.05].
    private static readonly float[] Quarter = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];

    private static double Frequency(int[] histogram, int id) => histogram[id] / (double)histogram.Sum();

    [Test]
    public void TopKTwoOfFourDrawsOnlyTheTwoLargest()
    {
        // [1, 5, 3, 4]: the two largest are id 1 (5) and id 3 (4); P(1) = e^5 / (e^5 + e^4) = 1 / (1 + e^-1).
        int[] h = Histogram(new Sampler(Plain() with { TopK = 2 }, 4), [1f, 5f, 3f, 4f], Draws);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 1, 3 }));
        Assert.That(Frequency(h, 1), Is.EqualTo(1 / (1 + Math.Exp(-1))).Within(Tolerance));
    }

    [Test]
    public void TopKTiesAtTheBoundaryKeepTheLowerIds()
    {
        // [2, 7, 2, 2, 1]: top-3 is id 1 and then two of the three 2s: ids 0 and 2 (lowest ids); 3 never.
        int[] h = Histogram(new Sampler(Plain() with { TopK = 3 }, 5), [2f, 7f, 2f, 2f, 1f], Draws);
        Assert.That(h[3] + h[4], Is.Zero);
        Assert.That(h[0], Is.Positive);
        Assert.That(h[2], Is.Positive);
    }

    [Test]
    public void TopKLargerThanTheVocabularyKeepsEverything()
    {
        int[] h = Histogram(new Sampler(Plain() with { TopK = 100 }, 4), Quarter, Draws);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 0, 1, 2, 3 }));
    }

    [TestCase(0.7f, new[] { 0, 1 })]        // cumulative 0.5 < 0.7, 0.8 ≥ 0.7
    [TestCase(0.85f, new[] { 0, 1, 2 })]    // 0.5, 0.8 < 0.85, 0.95 ≥ 0.85
    [TestCase(0.4f, new[] { 0 })]           // 0.5 ≥ 0.4 at once
    [TestCase(0.97f, new[] { 0, 1, 2, 3 })] // 0.95 < 0.97: all four
    public void TopPKeepsTheSmallestPrefixReachingP(float topP, int[] survivors)
    {
        int[] h = Histogram(new Sampler(Plain() with { TopP = topP }, 4), Quarter, Draws);
        Assert.That(Drawn(h), Is.EqualTo(survivors));
        double kept = survivors.Sum(i => new[] { 0.5, 0.3, 0.15, 0.05 }[i]);
        Assert.That(Frequency(h, 0), Is.EqualTo(0.5 / kept).Within(Tolerance));
    }

    [Test]
    public void TopPIsMeasuredAtTemperatureOne()
    {
        // llama.cpp applies temperature last. At T = 1 top-p 0.6 keeps {0, 1} (0.5 < 0.6 ≤ 0.8). At T = 0.5 the
        // probabilities would be ∝ [0.25, 0.09, 0.0225, 0.0025], P(0) = 0.685 ≥ 0.6, which would keep {0} only.
        // The draw itself is at T = 0.5: P(0 | {0, 1}) = 0.25 / (0.25 + 0.09).
        int[] h = Histogram(new Sampler(Plain() with { TopP = 0.6f, Temperature = 0.5f }, 4), Quarter, Draws);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(Frequency(h, 0), Is.EqualTo(0.25 / 0.34).Within(Tolerance));
    }

    [TestCase(0.25f, new[] { 0, 1, 2 })] // threshold 0.25 × 0.5 = 0.125: 0.15 stays, 0.05 goes
    [TestCase(0.35f, new[] { 0, 1 })]    // threshold 0.175: 0.15 goes
    [TestCase(0.09f, new[] { 0, 1, 2, 3 })] // threshold 0.045: all stay
    [TestCase(1f, new[] { 0 })]          // only the maximum
    public void MinPKeepsTokensAtLeastMinPTimesTheMostLikely(float minP, int[] survivors)
    {
        int[] h = Histogram(new Sampler(Plain() with { MinP = minP }, 4), Quarter, Draws);
        Assert.That(Drawn(h), Is.EqualTo(survivors));
        double kept = survivors.Sum(i => new[] { 0.5, 0.3, 0.15, 0.05 }[i]);
        Assert.That(Frequency(h, 1), Is.EqualTo(survivors.Contains(1) ? 0.3 / kept : 0).Within(Tolerance));
    }

    [Test]
    public void TopPIsAppliedToTheTopKSurvivors()
    {
        // Probabilities [0.4, 0.3, 0.2, 0.1]. Top-k 2 leaves [0.4, 0.3], renormalised [4/7, 3/7]; top-p 0.5 then keeps
        // id 0 alone (4/7 ≥ 0.5). Top-p 0.5 on the full distribution would keep {0, 1} (0.4 < 0.5).
        float[] logits = [MathF.Log(0.4f), MathF.Log(0.3f), MathF.Log(0.2f), MathF.Log(0.1f)];
        int[] h = Histogram(new Sampler(Plain() with { TopK = 2, TopP = 0.5f }, 4), logits, 2000);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 0 }));
        h = Histogram(new Sampler(Plain() with { TopP = 0.5f }, 4), logits, 2000);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void MinPComesAfterTopP()
    {
        // [0.5, 0.3, 0.15, 0.05], top-p 0.82 then min-p 0.25: top-p keeps {0,1,2} (0.8 < 0.82 ≤ 0.95), min-p keeps
        // p ≥ 0.125 of those: {0,1,2}. The other order would renormalise min-p's {0,1,2} to [0.526, 0.316, 0.158]
        // and top-p 0.82 would then stop at {0,1} (0.842).
        int[] h = Histogram(new Sampler(Plain() with { TopP = 0.82f, MinP = 0.25f }, 4), Quarter, Draws);
        Assert.That(Drawn(h), Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void ABannedTokenIsNeverDrawn()
    {
        float[] logits = [3f, 1f, 2.5f, 0f];
        var ban = new Dictionary<int, float> { [0] = float.NegativeInfinity };
        Assert.That(new Sampler(SamplingOptions.Greedy with { LogitBias = ban }, 4).Sample(logits), Is.EqualTo(2));
        foreach (SamplingOptions o in new[] { Plain(), Plain() with { TopK = 2 }, Plain() with { TopP = 0.99f }, new SamplingOptions { Seed = 5 } })
        {
            int[] h = Histogram(new Sampler(o with { LogitBias = ban, Temperature = 2f }, 4), logits, 5000);
            Assert.That(h[0], Is.Zero, o.ToString());
            Assert.That(h[2], Is.Positive, o.ToString());
        }
    }

    [Test]
    public void APositiveBiasIsAdded()
    {
        // [3, 1, 2.5, 0] + {3: +3.5} = [3, 1, 2.5, 3.5]: greedy takes 3; with {3: +2.5} it is a tie 3 = 3 → id 0.
        float[] logits = [3f, 1f, 2.5f, 0f];
        var greedy = SamplingOptions.Greedy;
        Assert.That(new Sampler(greedy with { LogitBias = new Dictionary<int, float> { [3] = 3.5f } }, 4).Sample(logits), Is.EqualTo(3));
        Assert.That(new Sampler(greedy with { LogitBias = new Dictionary<int, float> { [3] = 2.5f } }, 4).Sample(logits), Is.EqualTo(0));
    }

    [Test]
    public void TopKOnAFullVocabularyMatchesASort()
    {
        // Logits rounded to integers: the 40th largest is one of ~150 sevens, so the tie-break (lower id first) matters.
        float[] logits = RandomLogits(256000, seed: 11).Select(x => MathF.Round(x)).ToArray();
        int[] expected = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(40).ToArray();
        var sampler = new Sampler(Plain() with { TopK = 40 }, logits.Length);
        Assert.That(Candidates(sampler, logits), Is.EqualTo(expected));
    }

    [TestCase(1f, 0.95f)]  // a broad nucleus (a large part of the vocabulary): the search grows to a full sort
    [TestCase(4f, 0.9f)]   // a sharp one: found among the first few hundred
    [TestCase(4f, 0.999f)]
    public void TopPOnAFullVocabularyMatchesASort(float scale, float topP)
    {
        float[] logits = RandomLogits(256000, seed: 12).Select(x => x * scale).ToArray();
        double max = logits.Max();
        double total = logits.Sum(x => Math.Exp(x - max));
        int[] order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        double cumulative = 0;
        int length = 0;
        while (cumulative < topP * total) cumulative += Math.Exp(logits[order[length++]] - max);

        var sampler = new Sampler(Plain() with { TopP = topP }, logits.Length);
        int[] actual = Candidates(sampler, logits);
        TestContext.Out.WriteLine($"nucleus of {actual.Length} tokens (expected {length})");
        // The same set (no duplicates); a large nucleus comes back in partition order, a small one sorted.
        Assert.That(actual.Order().ToArray(), Is.EqualTo(order.Take(length).Order().ToArray()));
    }

    [TestCase("equal")]
    [TestCase("ascending")]
    [TestCase("descending")]
    [TestCase("two levels")]
    public void TopPOnAdversarialFullVocabularies(string shape)
    {
        // Orders that defeat naive quickselect pivots, and ties everywhere. Expected set: sort by (logit desc, id asc)
        // and walk the softmax in double until half the mass is reached.
        const int vocab = 256000;
        float[] logits = shape switch
        {
            "equal" => new float[vocab],  // nucleus 0.5 = exactly the 128000 lowest ids
            "ascending" => Enumerable.Range(0, vocab).Select(i => i * 1e-5f).ToArray(),
            "descending" => Enumerable.Range(0, vocab).Select(i => -i * 1e-5f).ToArray(),
            _ => Enumerable.Range(0, vocab).Select(i => i % 3 == 0 ? 1f : 0f).ToArray(),
        };
        double max = logits.Max();
        double total = logits.Sum(x => Math.Exp(x - max));
        int[] order = Enumerable.Range(0, vocab).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        double cumulative = 0;
        int length = 0;
        while (cumulative < 0.5 * total) cumulative += Math.Exp(logits[order[length++]] - max);
        if (shape == "equal") Assert.That(length, Is.EqualTo(128000));

        int[] actual = Candidates(new Sampler(Plain() with { TopP = 0.5f }, vocab), logits);
        Assert.That(actual.Order().ToArray(), Is.EqualTo(order.Take(length).Order().ToArray()));
    }

    [Test]
    public void MinPOnAFullVocabularyMatchesAFilter()
    {
        float[] logits = RandomLogits(256000, seed: 13);
        double threshold = logits.Max() + Math.Log(0.05);
        int[] expected = Enumerable.Range(0, logits.Length).Where(i => logits[i] >= threshold).ToArray();
        var sampler = new Sampler(Plain() with { MinP = 0.05f }, logits.Length);
        Assert.That(Candidates(sampler, logits), Is.EqualTo(expected));
    }

    private static int[] Candidates(Sampler sampler, float[] logits)
    {
        Span<float> work = sampler.AdjustLogits(logits, default);
        return sampler.SelectCandidates(work).ToArray().Select(Sampler.Id).ToArray();
    }
}
