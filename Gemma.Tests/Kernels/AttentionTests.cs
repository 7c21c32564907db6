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
        // The scalar references agree with the SIMD kernels (meaningful on the Vector256/512 passes; on the scalar pass
        // the public methods are them). Both are held to the double-precision definitions in the tests above.
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

    [Test]
    public unsafe void ScaledHalfWideningTimesTwoPow112IsExactForAllFiniteHalves()
    {
        // F16ScaledRow reads 2⁻¹¹²·h; times 2¹¹² it must be (float)Half bit for bit for every finite half
        // (exponent field < 31), on the scalar, 256-bit and 512-bit loads.
        ushort[] all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        fixed (ushort* p = all)
            for (int i = 0; i < all.Length; i += 16)
            {
                var v512 = Vector512.IsHardwareAccelerated ? F16ScaledRow.Load512((byte*)p, i) : default;
                var v256 = Vector256.IsHardwareAccelerated ? F16ScaledRow.Load256((byte*)p, i) : default;
                for (int k = 0; k < 16; k++)
                {
                    if ((all[i + k] & 0x7C00) == 0x7C00) continue; // inf/NaN: not allowed in the scaled path
                    float expected = (float)BitConverter.UInt16BitsToHalf(all[i + k]);
                    AssertSameFloat(F16ScaledRow.Load((byte*)p, i + k) * F16ScaledRow.Compensation, expected, i + k);
                    if (Vector512.IsHardwareAccelerated) AssertSameFloat(v512[k] * F16ScaledRow.Compensation, expected, i + k);
                    if (Vector256.IsHardwareAccelerated && k < 8) AssertSameFloat(v256[k] * F16ScaledRow.Compensation, expected, i + k);
                }
            }
    }

    [Test]
    public void GroupedHeadsEqualOneHeadCallsAndHalfEqualsWidenedFloat(
        [Values(1, 2, 3, 4, 5)] int heads, [Values(7, 64, 256, 257)] int d, [Values(1f, 40000f)] float qScale)
    {
        // Heads computed together (pairs sharing each key/value load, key blocks) give the same bits as one head per
        // call; half keys/values (scaled widening, or the exact one when |q| ≥ 2¹⁵) the same bits as float32 keys/values
        // holding the widened halves. Subnormal halves included (scale 1e-5).
        foreach (int count in new[] { 0, 1, 63, 64, 65, 200 })
        {
            int stride = count + 3;
            float[] q = Random(heads * d, heads + d, qScale);
            Half[] hk = ToHalf(Random(count * d, count + d, 4f)), hv = ToHalf(Random(count * d, count + 2 * d, 1e-5f));
            float[] fk = hk.Select(h => (float)h).ToArray(), fv = hv.Select(h => (float)h).ToArray();
            float[] grouped = new float[heads * stride], groupedHalf = new float[heads * stride], single = new float[heads * stride];
            Attention.Scores(q, heads, fk, count, 0.0625f, 50f, grouped, stride);
            Attention.Scores(q, heads, hk, count, 0.0625f, 50f, groupedHalf, stride);
            for (int h = 0; h < heads; h++)
                Attention.Scores(q.AsSpan(h * d, d), fk, count, 0.0625f, 50f, single.AsSpan(h * stride, count));
            Assert.That(grouped, Is.EqualTo(single).AsCollection, $"scores, count={count}");
            Assert.That(groupedHalf, Is.EqualTo(single).AsCollection, $"half scores, count={count}");

            float[] weights = Random(heads * stride, count + 7); // any weights (also negative) are allowed
            float[] outGrouped = Random(heads * d, 5), outHalf = (float[])outGrouped.Clone(), outSingle = (float[])outGrouped.Clone();
            Attention.AccumulateWeightedValues(weights, heads, stride, fv, count, outGrouped);
            Attention.AccumulateWeightedValues(weights, heads, stride, hv, count, outHalf);
            for (int h = 0; h < heads; h++)
                Attention.AccumulateWeightedValues(weights.AsSpan(h * stride, count), fv, outSingle.AsSpan(h * d, d));
            Assert.That(outGrouped, Is.EqualTo(outSingle).AsCollection, $"values, count={count}");
            Assert.That(outHalf, Is.EqualTo(outSingle).AsCollection, $"half values, count={count}");
        }
    }

    private static void AssertSameFloat(float actual, float expected, int bits)
    {
        if (float.IsNaN(expected)) Assert.That(float.IsNaN(actual), Is.True, $"0x{bits:X4}");
        else Assert.That(BitConverter.SingleToUInt32Bits(actual), Is.EqualTo(BitConverter.SingleToUInt32Bits(expected)), $"0x{bits:X4}");
    }
}
