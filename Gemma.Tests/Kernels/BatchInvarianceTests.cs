using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

/// <summary>
/// Batch invariance of <see cref="MatMul.Linear"/>: a token's output row must be bit-identical whether it is computed
/// alone (decode) or inside a batch of any size (prefill, or a server batching decode rows of several sequences), at
/// any position in the batch, with or without a pool. Each output element has one reduction order whatever the
/// tiling, so this is an exact comparison, not a tolerance. Runs on the active width (Vector512, Vector256 or scalar;
/// scripts/test.sh repeats the Kernels category with the wider paths switched off).
/// </summary>
[Category("Kernels")]
public unsafe class BatchInvarianceTests
{
    private static readonly int[] BatchSizes = [.. Enumerable.Range(1, 16), 17, 33, 64, 127, 128];

    // Shapes: odd row count (row tiles with remainders), several k-blocks at 2304 and 9216 columns, a column tail.
    [TestCase(nameof(WeightType.F32), 37, 2304)]
    [TestCase(nameof(WeightType.BF16), 37, 2304)]
    [TestCase(nameof(WeightType.Q8_0), 37, 2304)]
    [TestCase(nameof(WeightType.F32), 13, 301)]
    [TestCase(nameof(WeightType.BF16), 13, 301)]
    [TestCase(nameof(WeightType.BF16), 21, 9216)]
    [TestCase(nameof(WeightType.Q8_0), 21, 9216)]
    [TestCase(nameof(WeightType.Q8_0), 11, 96)]   // odd block count
    [TestCase(nameof(WeightType.Q8_0), 9, 608)]   // 19 blocks: a 16-block group, a block pair and the odd last block
    [TestCase(nameof(WeightType.Q8_0), 6, 160)]   // 5 and 2 blocks: the Vector128 kernels' groups of 4 with 1 and 2 left over
    [TestCase(nameof(WeightType.Q8_0), 5, 64)]
    [TestCase(nameof(WeightType.Q4_0), 9, 608)]   // 19 blocks: Q4_0's Vector128 GEMM with 3 blocks left over
    [TestCase(nameof(WeightType.Q4_0), 13, 2304)]
    [TestCase(nameof(WeightType.Q4_K), 13, 2304)]
    [TestCase(nameof(WeightType.Q5_K), 13, 2304)]
    [TestCase(nameof(WeightType.Q6_K), 13, 2304)]
    [TestCase(nameof(WeightType.Q4_K), 7, 9216)]
    [TestCase(nameof(WeightType.Q6_K), 7, 9216)]
    public void RowsAreBitIdenticalAloneAndInBatches(string typeName, int rows, int cols)
    {
        WeightType type = Enum.Parse<WeightType>(typeName); // NUnit methods are public, WeightType is internal
        const int MaxN = 128;
        using GuardedBuffer<byte> wb = type is WeightType.F32 or WeightType.BF16 or WeightType.Q8_0
            ? Weights(type, rows, cols, rows * 7 + cols, out WeightMatrix w)
            : MatMulKQuantTests.RandomWeights(type, rows, cols, rows * 7 + cols, out w);
        float[] x = Random(MaxN * cols, cols + 3);
        using var pool = new WorkerPool(2);

        // Every token alone (n = 1), without a pool: the decode path.
        var alone = new float[MaxN * rows];
        for (int t = 0; t < MaxN; t++)
            MatMul.Linear(w, x.AsSpan(t * cols, cols), alone.AsSpan(t * rows, rows), 1);

        foreach (int n in BatchSizes)
        {
            // Batches starting at different tokens, so a token lands at different positions inside tiles.
            foreach (int start in new[] { 0, MaxN - n, (MaxN - n) / 2 })
            {
                var y = new float[n * rows];
                foreach (WorkerPool? p in new[] { null, pool })
                {
                    y.AsSpan().Fill(float.NaN);
                    MatMul.Linear(w, x.AsSpan(start * cols, n * cols), y, n, p);
                    for (int i = 0; i < n * rows; i++)
                    {
                        float expected = alone[start * rows + i];
                        if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected))
                            Assert.Fail($"{type} {rows}×{cols}, n={n}, start={start}, pool={p is not null}: token {start + i / rows} row {i % rows}: " +
                                        $"batch {y[i]:R} != alone {expected:R}");
                    }
                }
            }
        }
    }
}

/// <summary><see cref="MatMul.Linear2"/> / <see cref="MatMul.Linear3"/>: one pool call, results identical to separate calls.</summary>
[Category("Kernels")]
public unsafe class FusedLinearTests
{
    [Test]
    public void FusedCallsEqualSeparateCalls([Values(nameof(WeightType.F32), nameof(WeightType.BF16), nameof(WeightType.Q8_0))] string typeName,
                                             [Values(1, 3, 8)] int n, [Values(false, true)] bool usePool)
    {
        WeightType type = Enum.Parse<WeightType>(typeName); // NUnit methods are public, WeightType is internal
        const int Cols = 320;
        using GuardedBuffer<byte> b0 = Weights(type, 67, Cols, 1, out WeightMatrix w0);
        using GuardedBuffer<byte> b1 = Weights(type, 32, Cols, 2, out WeightMatrix w1);
        using GuardedBuffer<byte> b2 = Weights(type, 5, Cols, 3, out WeightMatrix w2);
        float[] x = Random(n * Cols, 4);
        using var pool = usePool ? new WorkerPool(2) : null;
        float[] e0 = new float[n * 67], e1 = new float[n * 32], e2 = new float[n * 5];
        MatMul.Linear(w0, x, e0, n);
        MatMul.Linear(w1, x, e1, n);
        MatMul.Linear(w2, x, e2, n);
        float[] y0 = new float[n * 67], y1 = new float[n * 32], y2 = new float[n * 5];
        y0.AsSpan().Fill(float.NaN); y1.AsSpan().Fill(float.NaN); y2.AsSpan().Fill(float.NaN);
        MatMul.Linear3(w0, y0, w1, y1, w2, y2, x, n, pool);
        Assert.That(y0, Is.EqualTo(e0).AsCollection);
        Assert.That(y1, Is.EqualTo(e1).AsCollection);
        Assert.That(y2, Is.EqualTo(e2).AsCollection);
        y0.AsSpan().Fill(float.NaN); y1.AsSpan().Fill(float.NaN);
        MatMul.Linear2(w0, y0, w1, y1, x, n, pool);
        Assert.That(y0, Is.EqualTo(e0).AsCollection);
        Assert.That(y1, Is.EqualTo(e1).AsCollection);
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        using GuardedBuffer<byte> b0 = Weights(WeightType.F32, 4, 8, 1, out WeightMatrix w0);
        using GuardedBuffer<byte> b1 = Weights(WeightType.F32, 4, 16, 2, out WeightMatrix w1);
        Assert.Throws<ArgumentException>(() => MatMul.Linear2(w0, new float[8], w1, new float[8], new float[32], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Linear2(w0, new float[7], w0, new float[8], new float[16], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Linear3(w0, new float[8], w0, new float[8], w0, new float[8], new float[15], 2));
    }
}
