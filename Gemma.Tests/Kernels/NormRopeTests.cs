using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

[Category("Kernels")]
public class NormRopeTests
{
    [Test]
    public void RmsNormMatchesDouble([Values(false, true)] bool inPlace)
    {
        foreach (int dim in Enumerable.Range(1, 257).Append(2304))
        {
            const int Rows = 3;
            float[] x = Random(dim * Rows, dim, 3f), scale = Random(dim, dim + 1);
            float[] y = inPlace ? (float[])x.Clone() : new float[dim * Rows];
            var expected = new double[x.Length];
            for (int r = 0; r < Rows; r++)
            {
                double ss = 0;
                for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
                double inv = 1 / Math.Sqrt(ss / dim + 1e-6);
                for (int i = 0; i < dim; i++) expected[r * dim + i] = x[r * dim + i] * inv * scale[i];
            }
            RmsNorm.Apply(inPlace ? y : x, scale, 1e-6f, y);
            for (int i = 0; i < x.Length; i++)
                // Σx² of positive terms: relative error ≤ dim·U for any order (recursive-summation bound), halved by
                // the sqrt, plus ~6 roundings (mean, eps, sqrt, reciprocal, two products): (dim + 16)·U relative.
                Assert.That(Math.Abs(y[i] - expected[i]), Is.LessThanOrEqualTo((dim + 16) * U * Math.Abs(expected[i]) + 1e-37), $"dim={dim} i={i}");
        }
    }

    /// <summary>
    /// Against the definition in double (independent of the kernels: on the scalar pass the public method is the
    /// scalar reference) and, on SIMD paths, bit-identical to the scalar reference.
    /// </summary>
    [Test]
    public void RopeMatchesDoubleAndIsBitIdenticalToScalarReference()
    {
        foreach (int headDim in Enumerable.Range(1, 129).Select(h => 2 * h).Append(256))
        {
            const int Heads = 3;
            float[] x = Random(headDim * Heads, headDim);
            float[] cos = Random(headDim / 2, 1), sin = Random(headDim / 2, 2);
            float[] expected = (float[])x.Clone();
            Rope.ApplyRotateHalfScalar(expected, headDim, cos, sin);
            float[] original = (float[])x.Clone();
            Rope.ApplyRotateHalf(x, headDim, cos, sin);
            int half = headDim / 2;
            for (int h = 0; h < Heads; h++)
                for (int i = 0; i < half; i++)
                {
                    double a = original[h * headDim + i], b = original[h * headDim + half + i], c = cos[i], s = sin[i];
                    // Two products and a sum in float32: at most U·(|p| + |q|) + U·|p ± q| ≤ 2U·(|p| + |q|).
                    double bound1 = 2 * U * (Math.Abs(a * c) + Math.Abs(b * s)) + 1e-37;
                    double bound2 = 2 * U * (Math.Abs(b * c) + Math.Abs(a * s)) + 1e-37;
                    Assert.That(x[h * headDim + i], Is.EqualTo(a * c - b * s).Within(bound1), $"headDim={headDim} x1[{i}]");
                    Assert.That(x[h * headDim + half + i], Is.EqualTo(b * c + a * s).Within(bound2), $"headDim={headDim} x2[{i}]");
                }
            Assert.That(x, Is.EqualTo(expected).AsCollection, $"headDim={headDim}"); // same ops, same order, no FMA
        }
    }

    [Test]
    public void RopeRotatesLikeTheDefinition()
    {
        // Independent check of the scalar reference: position 1, theta 10000, head_dim 4 → pairs (0,2) and (1,3).
        var invFreq = new float[2];
        Rope.InverseFrequencies(4, 10000, invFreq);
        Assert.That(invFreq[0], Is.EqualTo(1f));
        Assert.That(invFreq[1], Is.EqualTo(0.01f).Within(1e-9));
        float[] cos = new float[2], sin = new float[2];
        Rope.CosSin(1, invFreq, cos, sin);
        float[] x = [1, 1, 0, 0];
        Rope.ApplyRotateHalf(x, 4, cos, sin);
        Assert.That(x[0], Is.EqualTo((float)Math.Cos(1)).Within(1e-7));
        Assert.That(x[2], Is.EqualTo((float)Math.Sin(1)).Within(1e-7));
        Assert.That(x[1], Is.EqualTo((float)Math.Cos(0.01)).Within(1e-7));
        Assert.That(x[3], Is.EqualTo((float)Math.Sin(0.01)).Within(1e-7));
    }
}
