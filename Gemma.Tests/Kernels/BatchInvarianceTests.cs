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
    [TestCase(WeightType.F32, 37, 2304)]
    [TestCase(WeightType.BF16, 37, 2304)]
    [TestCase(WeightType.Q8_0, 37, 2304)]
    [TestCase(WeightType.F32, 13, 301)]
    [TestCase(WeightType.BF16, 13, 301)]
    [TestCase(WeightType.BF16, 21, 9216)]
    [TestCase(WeightType.Q8_0, 21, 9216)]
    [TestCase(WeightType.Q8_0, 11, 96)]   // odd block count
    public void RowsAreBitIdenticalAloneAndInBatches(WeightType type, int rows, int cols)
    {
        const int MaxN = 128;
        using GuardedBuffer<byte> wb = Weights(type, rows, cols, rows * 7 + cols, out WeightMatrix w);
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
