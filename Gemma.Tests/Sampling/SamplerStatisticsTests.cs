using Gemma.Core.Generation;
using NUnit.Framework;
using static Gemma.Tests.Sampling.SamplingTestHelpers;

namespace Gemma.Tests.Sampling;

/// <summary>
/// The draws follow the softmax: 200 000 draws from a 6-token distribution at a fixed seed, compared with the
/// textbook softmax computed here in double. Thresholds are generous (a frequency's standard deviation is at most
/// 0.0011 at this count; chi-square with 5 degrees of freedom exceeds 30 with probability 1.5e-5), so they fail
/// only for a real bias such as a wrong temperature, an off-by-one in the cumulative walk or a skewed generator.
/// </summary>
[Category("Sampling")]
public class SamplerStatisticsTests
{
    private const int Draws = 200_000;
    private static readonly double[] Logits = [1.0, 2.0, 0.5, -1.0, 3.0, 1.5];

    [TestCase(1.0f, 1)]
    [TestCase(1.0f, 2)]
    [TestCase(0.5f, 3)]
    [TestCase(2.0f, 4)]
    public void FrequenciesFollowTheSoftmaxAtTheTemperature(float temperature, int seed)
    {
        double[] expected = Softmax(Logits, temperature);
        var sampler = new Sampler(Plain(seed) with { Temperature = temperature }, Logits.Length);
        int[] histogram = Histogram(sampler, Logits.Select(x => (float)x).ToArray(), Draws);

        double[] frequencies = histogram.Select(c => c / (double)Draws).ToArray();
        double maxError = frequencies.Zip(expected, (f, p) => Math.Abs(f - p)).Max();
        double chi = ChiSquare(histogram, expected);
        TestContext.Out.WriteLine($"T={temperature}: expected [{string.Join(", ", expected.Select(p => p.ToString("F4")))}]");
        TestContext.Out.WriteLine($"        observed [{string.Join(", ", frequencies.Select(p => p.ToString("F4")))}], " +
                                  $"max |error| {maxError:F5}, chi-square {chi:F2}");
        Assert.That(maxError, Is.LessThan(0.01));
        Assert.That(chi, Is.LessThan(30));
    }

    [Test]
    public void LowerTemperatureSharpens()
    {
        // The most likely token (id 4) gets softmax(l/0.5)[4] ≈ 0.80 at T = 0.5 against softmax(l)[4] ≈ 0.56 at T = 1.
        float[] logits = Logits.Select(x => (float)x).ToArray();
        int[] cold = Histogram(new Sampler(Plain(5) with { Temperature = 0.5f }, 6), logits, 50_000);
        int[] warm = Histogram(new Sampler(Plain(5), 6), logits, 50_000);
        Assert.That(cold[4] / 50_000.0, Is.EqualTo(Softmax(Logits, 0.5)[4]).Within(0.01));
        Assert.That(warm[4] / 50_000.0, Is.EqualTo(Softmax(Logits, 1.0)[4]).Within(0.01));
        Assert.That(cold[3], Is.LessThan(warm[3]));
    }
}
