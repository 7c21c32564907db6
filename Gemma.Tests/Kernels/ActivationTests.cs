using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

[Category("Kernels")]
public class ActivationTests
{
    private static readonly int[] Lengths = [.. Enumerable.Range(0, 258), 2304, 9216];

    [Test]
    public void GeluTanhMulMatchesDouble([Values(false, true)] bool aliasOutputToGate)
    {
        foreach (int n in Lengths)
        {
            float[] gate = Random(n, n, 4f), up = Random(n, n + 1, 2f);
            float[] output = aliasOutputToGate ? gate : new float[n];
            double[] expected = new double[n], scale = new double[n], zs = new double[n];
            for (int i = 0; i < n; i++)
            {
                double x = gate[i], z = Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
                expected[i] = 0.5 * x * (1 + Math.Tanh(z)) * up[i];
                scale[i] = Math.Abs(0.5 * x * up[i]);
                zs[i] = Math.Abs(z);
            }
            Activations.GeluTanhMul(gate, up, output);
            for (int i = 0; i < n; i++)
            {
                // t = tanh(z) carries an absolute error of about (3 + 4|z|)·U (1-2 ulp from tanh, ~4 roundings in z
                // times tanh' ≤ 1); 1 + t cancels for very negative x, so the bound is on 0.5·|x·up|·(…), not on the
                // result; 16·U covers that plus the final products with margin.
                double allowed = 16 * U * scale[i] * (1 + zs[i]) + 1e-37;
                Assert.That(Math.Abs(output[i] - expected[i]), Is.LessThanOrEqualTo(allowed), $"n={n} i={i} x={(aliasOutputToGate ? float.NaN : gate[i])}");
            }
        }
    }

    [Test]
    public void SoftCapMatchesDouble([Values(30f, 50f)] float cap)
    {
        foreach (int n in Lengths)
        {
            float[] x = Random(n, n, 150f);
            double[] expected = x.Select(v => cap * Math.Tanh(v / (double)cap)).ToArray();
            Activations.SoftCapInPlace(x, cap);
            for (int i = 0; i < n; i++)
                // x/cap rounds (U relative → ≤ U·|x/cap| in tanh), tanh itself 1-2 ulp, times cap: 8·U·(cap + |x|).
                Assert.That(Math.Abs(x[i] - expected[i]), Is.LessThanOrEqualTo(8 * U * (cap + 150)), $"n={n} i={i}");
        }
    }

    [Test]
    public void ElementwiseFunctionsGiveTheSameBitsOnASpanCutAtChunkMultiples()
    {
        // The decode step runs GeLU·up and the soft-cap of its one row on the pool in pieces that start at multiples of
        // Activations.Chunk; the server and the batch tests rely on those bits being the whole row's. Widths end with a
        // chunk shorter than a vector, one just over it, and a long one.
        foreach (int width in (int[])[2 * Activations.Chunk + 5, 3 * Activations.Chunk + 17, 2 * Activations.Chunk + 1000, 9216])
        {
            float[] gate = Random(width, width, 4f), up = Random(width, width + 1, 2f), logits = Random(width, width + 2, 150f);
            float[] wholeGelu = new float[width], wholeCap = (float[])logits.Clone();
            Activations.GeluTanhMul(gate, up, wholeGelu);
            Activations.SoftCapInPlace(wholeCap, 30f);
            foreach (int cut in (int[])[Activations.Chunk, 2 * Activations.Chunk])
            {
                float[] pieceGelu = new float[width], pieceCap = (float[])logits.Clone();
                for (int start = 0; start < width; start += cut)
                {
                    int length = Math.Min(cut, width - start);
                    Activations.GeluTanhMul(gate.AsSpan(start, length), up.AsSpan(start, length), pieceGelu.AsSpan(start, length));
                    Activations.SoftCapInPlace(pieceCap.AsSpan(start, length), 30f);
                }
                for (int i = 0; i < width; i++)
                {
                    Assert.That(BitConverter.SingleToInt32Bits(pieceGelu[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(wholeGelu[i])), $"GeLU width={width} cut={cut} i={i}");
                    Assert.That(BitConverter.SingleToInt32Bits(pieceCap[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(wholeCap[i])), $"soft-cap width={width} cut={cut} i={i}");
                }
            }
        }
    }

    /// <summary>The definition, written independently of the kernel's scalar reference: first index of the largest non-NaN value, -1 if none.</summary>
    private static int ReferenceArgMax(float[] x)
    {
        var numbers = Enumerable.Range(0, x.Length).Where(i => !float.IsNaN(x[i])).ToArray();
        if (numbers.Length == 0) return -1;
        float max = numbers.Max(i => x[i]);
        return numbers.First(i => x[i] == max);
    }

    [Test]
    public void ArgMaxMatchesTheDefinition()
    {
        var rng = new Random(5);
        foreach (int n in Lengths.Append(256000))
        {
            for (int variant = 0; variant < 5; variant++)
            {
                float[] x = Random(n, n * 7 + variant);
                if (n > 0)
                {
                    switch (variant)
                    {
                        case 1: x[rng.Next(n)] = float.NaN; x[rng.Next(n)] = 2f; x[rng.Next(n)] = 2f; break; // NaN and a tie
                        case 2: Array.Fill(x, float.NaN); break;
                        case 3: Array.Fill(x, float.NegativeInfinity); x[rng.Next(n)] = float.NaN; break;
                        case 4: Array.Fill(x, 0f); x[rng.Next(n)] = -0f; break;
                    }
                }
                int expected = ReferenceArgMax(x);
                Assert.That(Activations.ArgMax(x), Is.EqualTo(expected), $"n={n} variant={variant}");
                Assert.That(Activations.ArgMaxScalar(x), Is.EqualTo(expected), $"scalar reference n={n} variant={variant}");
            }
        }
        Assert.That(Activations.ArgMaxScalar([float.NaN, 1f, 3f, 3f]), Is.EqualTo(2));
        Assert.That(Activations.ArgMaxScalar([]), Is.EqualTo(-1));
    }

    [Test]
    public void AddAndScaleAreOneFloat32Rounding()
    {
        foreach (int n in Lengths)
        {
            float[] x = Random(n, n), y = Random(n, n + 1);
            float[] sum = (float[])x.Clone();
            Activations.AddInPlace(sum, y);
            float[] scaled = (float[])x.Clone();
            Activations.ScaleInPlace(scaled, 0.37f);
            for (int i = 0; i < n; i++)
            {
                Assert.That(sum[i], Is.EqualTo(x[i] + y[i]), $"add n={n} i={i}");       // one rounding: exact match
                Assert.That(scaled[i], Is.EqualTo(x[i] * 0.37f), $"scale n={n} i={i}");
            }
        }
    }
}
