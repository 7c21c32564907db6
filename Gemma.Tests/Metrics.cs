namespace Gemma.Tests;

/// <summary>Distribution metrics computed in double precision, independently of the engine.</summary>
internal static class Metrics
{
    /// <summary>KL(P‖Q) in nats between softmax(<paramref name="p"/>) and softmax(<paramref name="q"/>).</summary>
    public static double KlDivergence(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        double[] lp = LogSoftmax(p), lq = LogSoftmax(q);
        double kl = 0;
        for (int i = 0; i < lp.Length; i++) kl += Math.Exp(lp[i]) * (lp[i] - lq[i]);
        return kl;
    }

    public static double[] LogSoftmax(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in x) sum += Math.Exp(v - max);
        double log = max + Math.Log(sum);
        var result = new double[x.Length];
        for (int i = 0; i < x.Length; i++) result[i] = x[i] - log;
        return result;
    }
}
