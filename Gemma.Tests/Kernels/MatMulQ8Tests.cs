using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

/// <summary>Q8_0 weights: activation quantizer (exact), integer dot kernels vs their scalar reference, and vs dequantized weights.</summary>
[Category("Kernels")]
public unsafe class MatMulQ8Tests
{
    [Test]
    public void HalfToSingleIsExactForAll65536Values()
    {
        for (int h = 0; h <= ushort.MaxValue; h++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h), actual = MatMul.HalfToSingle((ushort)h);
            if (BitConverter.SingleToUInt32Bits(actual) != BitConverter.SingleToUInt32Bits(expected) && !(float.IsNaN(expected) && float.IsNaN(actual)))
                Assert.Fail($"0x{h:X4}: {actual:R} != {expected:R}");
        }
    }

    [Test]
    public void QuantizerMatchesScalarReferenceExactly()
    {
        const int Blocks = 257;
        float[] x = Random(Blocks * 32, 11, 3f);
        x.AsSpan(32, 32).Clear();                  // all-zero block: scale 0, values 0
        for (int j = 0; j < 32; j++) x[64 + j] = j - 15.5f; // exact .5 ties: round to even in every width
        x[100] = 1e-30f;                            // tiny block member
        var q = new sbyte[x.Length]; var s = new float[Blocks];
        var qRef = new sbyte[x.Length]; var sRef = new float[Blocks];
        fixed (float* px = x)
        fixed (sbyte* pq = q, pqr = qRef)
        fixed (float* ps = s, psr = sRef)
        {
            MatMul.QuantizeActivations(px, 1, x.Length, pq, ps);
            MatMul.QuantizeScalar(px, Blocks, pqr, psr);
        }
        Assert.That(s, Is.EqualTo(sRef).AsCollection);
        Assert.That(q, Is.EqualTo(qRef).AsCollection);
        // And the reference itself: |x − q·d| ≤ d/2 (+ rounding of x·(1/d)).
        for (int i = 0; i < x.Length; i++)
            Assert.That(Math.Abs(x[i] - qRef[i] * (double)sRef[i / 32]), Is.LessThanOrEqualTo(sRef[i / 32] * (0.5 + 1e-5)), $"element {i}");
    }

    private static void Check(int rows, int cols, int n, int seed, WorkerPool? pool = null)
    {
        using GuardedBuffer<byte> wb = Weights(WeightType.Q8_0, rows, cols, seed, out WeightMatrix w);
        using var x = new GuardedBuffer<float>((long)n * cols);
        using var y = new GuardedBuffer<float>((long)n * rows);
        Fill(x.Span, seed + 1);
        y.Span.Fill(float.NaN);
        MatMul.Linear(w, x.Span, y.Span, n, pool);
        y.AssertFrontIntact();

        // (1) Against the scalar reference of the same algorithm. Integer block sums are exact in both, only the
        // float32 sum over cols/32 block terms differs in order: 32·U relative to Σ|block terms| ≤ Σ|w·x| (+ the
        // activation rounding, which is bounded by (2) and covered by 2× margin on the magnitude).
        var yRef = new float[n * rows];
        MatMul.LinearQuantScalar(w, x.Span, yRef, n);
        (double[] exact, double[] magnitude) = KernelTestData.Linear(w, x.Span, n);
        var doubled = magnitude.Select(m => 2 * m).ToArray();
        AssertClose(y.Span, yRef.Select(v => (double)v).ToArray(), doubled, 32 * U, $"Q8 SIMD vs scalar {rows}×{cols} n={n}");

        // (2) Against dequantized weights in double: activation quantization moves each x by at most d/2 with
        // d = max|x_block|/127, so |Δy| ≤ Σ_blocks (max|x_b| / 254) · Σ_b |w| — computed here per output.
        for (int t = 0; t < n; t++)
            for (int r = 0; r < rows; r++)
            {
                double bound = 0;
                for (int b = 0; b < cols / 32; b++)
                {
                    double amax = 0, wsum = 0;
                    for (int j = 0; j < 32; j++)
                    {
                        amax = Math.Max(amax, Math.Abs(x.Span[t * cols + b * 32 + j]));
                        wsum += Math.Abs(Weight(w, r, b * 32 + j));
                    }
                    bound += amax / 254 * wsum * (1 + 1e-4);
                }
                double err = Math.Abs(y.Span[t * rows + r] - exact[t * rows + r]);
                if (err > bound + 64 * U * magnitude[t * rows + r] + 1e-30)
                    Assert.Fail($"Q8 vs dequantized: ({t},{r}) error {err:E3} above bound {bound:E3}");
            }
    }

    // Every small-batch width (n = 1…8 are one-pass kernels, 9 the packed GEMM) at every block count up to 40: the
    // 16-block gathered-scale groups, the block-pair tail and the odd last block in all combinations.
    [Test]
    public void EveryBlockCount1To40([Values(1, 2, 3, 4, 5, 6, 7, 8, 9)] int n)
    {
        for (int blocks = 0; blocks <= 40; blocks++) Check(5, blocks * 32, n, 100 * n + blocks);
    }

    [Test]
    public void TokenCounts([Values(1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33)] int n) => Check(37, 32 * 9, n, n);

    [TestCase(2048, 2304, 1)]
    [TestCase(1024, 2304, 2)]
    [TestCase(2304, 2048, 1)]
    [TestCase(2304, 9216, 1)]
    [TestCase(1000, 2304, 1)]
    [TestCase(256, 2304, 2)]   // the server's batched decode: 2…8 streams through the one-pass kernels
    [TestCase(256, 2304, 3)]
    [TestCase(256, 2304, 4)]
    [TestCase(96, 9216, 5)]
    [TestCase(96, 9216, 6)]
    [TestCase(256, 2048, 7)]
    [TestCase(256, 2304, 8)]
    public void GemmaShapes(int rows, int cols, int n) => Check(rows, cols, n, rows + cols);

    [Test]
    public void WithPool()
    {
        using var pool = new WorkerPool(2);
        Check(1001, 2304, 3, 5, pool);
    }
}
