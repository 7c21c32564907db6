using Gemma.Core.Generation;

namespace Gemma.Tests.Sampling;

/// <summary>Plain reference computations for the sampling tests (independent of the code under test).</summary>
internal static class SamplingTestHelpers
{
    /// <summary>Options with every filter off and temperature 1: draws follow softmax(logits) exactly.</summary>
    public static SamplingOptions Plain(int seed = 1234) => new()
    {
        Temperature = 1f, TopK = 0, TopP = 1f, MinP = 0f, Seed = seed,
    };

    /// <summary>How often each id is drawn in <paramref name="draws"/> calls.</summary>
    public static int[] Histogram(Sampler sampler, float[] logits, int draws, int[]? history = null)
    {
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Sample(logits, history)]++;
        return counts;
    }

    /// <summary>Textbook softmax in double: exp(x_i / t) / Σ exp(x_j / t), after subtracting the maximum.</summary>
    public static double[] Softmax(double[] logits, double temperature = 1.0)
    {
        double max = logits.Max();
        double[] e = logits.Select(x => Math.Exp((x - max) / temperature)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }

    /// <summary>Pearson's chi-square statistic of observed counts against expected probabilities.</summary>
    public static double ChiSquare(int[] observed, double[] probabilities)
    {
        double n = observed.Sum(), chi = 0;
        for (int i = 0; i < observed.Length; i++)
        {
            double expected = n * probabilities[i];
            chi += (observed[i] - expected) * (observed[i] - expected) / expected;
        }
        return chi;
    }

    /// <summary>Deterministic pseudo-random logits (System.Random with a fixed seed), roughly N(0, 2²).</summary>
    public static float[] RandomLogits(int vocab, int seed)
    {
        var random = new Random(seed);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            // Box–Muller.
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            logits[i] = (float)(2.0 * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return logits;
    }

    /// <summary>Ids that were drawn at least once.</summary>
    public static int[] Drawn(int[] histogram) => Enumerable.Range(0, histogram.Length).Where(i => histogram[i] > 0).ToArray();
}
