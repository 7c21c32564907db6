using System.Runtime.Intrinsics;
using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

[Category("Kernels")]
public class AttentionTests
{
    [Test]
    public void ScoresMatchDouble([Values(0f, 50f)] float softCap, [Values(1, 7, 64, 256, 257)] int d)
    {
        foreach (int count in Enumerable.Range(0, 40).Append(300))
        {
            float[] q = Random(d, d, 4f), keys = Random(count * d, count + d, 4f);
            var scores = new float[count + 1];
            scores[count] = 12345f; // sentinel
            float scale = 1f / MathF.Sqrt(d);
            Attention.Scores(q, keys, count, scale, softCap, scores);
            Assert.That(scores[count], Is.EqualTo(12345f), "wrote past count");
            for (int j = 0; j < count; j++)
            {
                double dot = 0, mag = 0;
                for (int i = 0; i < d; i++) { double p = (double)q[i] * keys[j * d + i]; dot += p; mag += Math.Abs(p); }
                double s = dot * scale, expected = softCap != 0 ? softCap * Math.Tanh(s / softCap) : s;
                // Dot: 32·U·Σ|q·k| (see AssertClose), scaled; tanh path adds 8·U·(cap + |s|) as in SoftCap.
                double allowed = 32 * U * mag * scale + 8 * U * (softCap + Math.Abs(s)) + 1e-37;
                Assert.That(Math.Abs(scores[j] - expected), Is.LessThanOrEqualTo(allowed), $"count={count} j={j}");
            }
        }
    }

    [Test]
    public void SoftmaxMatchesDouble()
    {
        foreach (int n in Enumerable.Range(1, 257).Append(4096))
        {
            float[] x = Random(n, n, 30f);
            double max = x.Max(v => (double)v);
            double[] e = x.Select(v => Math.Exp(v - max)).ToArray();
            double sum = e.Sum();
            float[] original = (float[])x.Clone();
            Attention.SoftmaxInPlace(x);
            for (int i = 0; i < n; i++)
            {
                // x − max is exact-ish (one rounding, ≤ U·|x − max| absolute → that much relative after exp), exp 1-2
                // ulp, the float32 sum ≤ n·U relative, the final product 1 ulp: 4·(|x − max| + n + 4)·U relative.
                double expected = e[i] / sum;
                double allowed = 4 * (Math.Abs(original[i] - max) + n + 4) * U * expected + 1e-40;
                Assert.That(Math.Abs(x[i] - expected), Is.LessThanOrEqualTo(allowed), $"n={n} i={i}");
            }
        }
        Attention.SoftmaxInPlace(Span<float>.Empty);
    }

    [Test]
    public void AccumulateWeightedValuesMatchesDouble()
    {
        foreach (int d in Enumerable.Range(1, 257).Append(256))
            foreach (int n in new[] { 0, 1, 2, 5, 33 })
            {
                float[] w = Random(n, n + d), v = Random(n * d, d * 3 + n), output = Random(d + 1, d);
                output[d] = 777f; // sentinel after the span passed in
                var expected = new double[d];
                var mag = new double[d];
                for (int i = 0; i < d; i++)
                {
                    expected[i] = output[i]; mag[i] = Math.Abs(output[i]);
                    for (int j = 0; j < n; j++) { double p = (double)w[j] * v[j * d + i]; expected[i] += p; mag[i] += Math.Abs(p); }
                }
                Attention.AccumulateWeightedValues(w, v, output.AsSpan(0, d));
                Assert.That(output[d], Is.EqualTo(777f), "wrote past the output");
                AssertClose(output.AsSpan(0, d), expected, mag, 32 * U, $"d={d} n={n}");
            }
    }

    [Test]
    public void ScalarReferencesAgreeWithPublicKernels()
    {
        // The scalar references stay the definition; on the scalar path the public methods are them.
        float[] q = Random(256, 1), keys = Random(10 * 256, 2);
        float[] a = new float[10], b = new float[10];
        Attention.Scores(q, keys, 10, 0.0625f, 50f, a);
        Attention.ScoresScalar(q, keys, 10, 0.0625f, 50f, b);
        Assert.That(a, Is.EqualTo(b).Within(1e-5f).AsCollection);
        Attention.SoftmaxInPlace(a);
        Attention.SoftmaxScalar(b);
        Assert.That(a, Is.EqualTo(b).Within(1e-6f).AsCollection);
    }

    private static Half[] ToHalf(float[] x) => x.Select(v => (Half)v).ToArray();

    [Test]
    public void HalfKeyScoresMatchDouble([Values(0f, 50f)] float softCap, [Values(1, 7, 64, 256, 257)] int d)
    {
        foreach (int count in Enumerable.Range(0, 40).Append(300))
        {
            float[] q = Random(d, d, 4f);
            Half[] keys = ToHalf(Random(count * d, count + d, 4f));
            var scores = new float[count + 1];
            scores[count] = 12345f; // sentinel
            float scale = 1f / MathF.Sqrt(d);
            Attention.Scores(q, keys, count, scale, softCap, scores);
            Assert.That(scores[count], Is.EqualTo(12345f), "wrote past count");
            for (int j = 0; j < count; j++)
            {
                // Widening half → float32 is exact, so the reference is the double dot of the stored halves.
                double dot = 0, mag = 0;
                for (int i = 0; i < d; i++) { double p = (double)q[i] * (double)keys[j * d + i]; dot += p; mag += Math.Abs(p); }
                double s = dot * scale, expected = softCap != 0 ? softCap * Math.Tanh(s / softCap) : s;
                double allowed = 32 * U * mag * scale + 8 * U * (softCap + Math.Abs(s)) + 1e-37;
                Assert.That(Math.Abs(scores[j] - expected), Is.LessThanOrEqualTo(allowed), $"count={count} j={j}");
            }
        }
    }

    [Test]
    public void HalfValuesAccumulateMatchesDouble()
    {
        foreach (int d in Enumerable.Range(1, 257).Append(256))
            foreach (int n in new[] { 0, 1, 2, 5, 33 })
            {
                float[] w = Random(n, n + d), output = Random(d + 1, d);
                Half[] v = ToHalf(Random(n * d, d * 3 + n));
                output[d] = 777f; // sentinel after the span passed in
                var expected = new double[d];
                var mag = new double[d];
                for (int i = 0; i < d; i++)
                {
                    expected[i] = output[i]; mag[i] = Math.Abs(output[i]);
                    for (int j = 0; j < n; j++) { double p = (double)w[j] * (double)v[j * d + i]; expected[i] += p; mag[i] += Math.Abs(p); }
                }
                Attention.AccumulateWeightedValues(w, v, output.AsSpan(0, d));
                Assert.That(output[d], Is.EqualTo(777f), "wrote past the output");
                AssertClose(output.AsSpan(0, d), expected, mag, 32 * U, $"d={d} n={n}");
            }
    }

    [Test]
    public void HalfScalarReferencesAgreeWithPublicKernels()
    {
        float[] q = Random(256, 1);
        Half[] keys = ToHalf(Random(10 * 256, 2)), values = ToHalf(Random(10 * 256, 3));
        float[] a = new float[10], b = new float[10];
        Attention.Scores(q, keys, 10, 0.0625f, 50f, a);
        Attention.ScoresScalar(q, keys, 10, 0.0625f, 50f, b);
        Assert.That(a, Is.EqualTo(b).Within(1e-5f).AsCollection);
        float[] oa = Random(256, 4), ob = (float[])oa.Clone();
        Attention.AccumulateWeightedValues(a, values, oa);
        Attention.AccumulateWeightedValuesScalar(a, values, ob);
        Assert.That(oa, Is.EqualTo(ob).Within(1e-5f).AsCollection);
    }

    [Test]
    public unsafe void HalfWideningIsExactForAllBitPatterns()
    {
        // Every one of the 65 536 halves through the scalar, 256-bit and 512-bit loads against .NET's (float)Half.
        ushort[] all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        fixed (ushort* p = all)
            for (int i = 0; i < all.Length; i += 16)
            {
                var v512 = Vector512.IsHardwareAccelerated ? F16Row.Load512((byte*)p, i) : default;
                var v256 = Vector256.IsHardwareAccelerated ? F16Row.Load256((byte*)p, i) : default;
                for (int k = 0; k < 16; k++)
                {
                    float expected = (float)BitConverter.UInt16BitsToHalf(all[i + k]);
                    AssertSameFloat(F16Row.Load((byte*)p, i + k), expected, i + k);
                    if (Vector512.IsHardwareAccelerated) AssertSameFloat(v512[k], expected, i + k);
                    if (Vector256.IsHardwareAccelerated && k < 8) AssertSameFloat(v256[k], expected, i + k);
                }
            }
    }

    private static void AssertSameFloat(float actual, float expected, int bits)
    {
        if (float.IsNaN(expected)) Assert.That(float.IsNaN(actual), Is.True, $"0x{bits:X4}");
        else Assert.That(BitConverter.SingleToUInt32Bits(actual), Is.EqualTo(BitConverter.SingleToUInt32Bits(expected)), $"0x{bits:X4}");
    }
}
