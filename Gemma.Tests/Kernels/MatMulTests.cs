using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

/// <summary>F32 and BF16 <see cref="MatMul.Linear"/> against a double-precision reference, for every width this process runs.</summary>
[Category("Kernels")]
public unsafe class MatMulTests
{
    // Tolerance relative to Σ|w·x| (see KernelTestData.AssertClose): 32 float32 roundoffs.
    private const double Tol = 32 * U;

    // Test parameters name the weight type as a string: NUnit test methods are public, WeightType is internal.
    private static void Check(string typeName, int rows, int cols, int n, int seed, WorkerPool? pool = null)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        using GuardedBuffer<byte> wb = Weights(type, rows, cols, seed, out WeightMatrix w);
        using var x = new GuardedBuffer<float>((long)n * cols);
        using var y = new GuardedBuffer<float>((long)n * rows);
        Fill(x.Span, seed + 1);
        y.Span.Fill(float.NaN); // every element must be written
        MatMul.Linear(w, x.Span, y.Span, n, pool);
        (double[] expected, double[] magnitude) = KernelTestData.Linear(w, x.Span, n);
        AssertClose(y.Span, expected, magnitude, Tol, $"{type} {rows}×{cols} n={n}");
        y.AssertFrontIntact();
    }

    [Test]
    public void EveryColumnCount0To257([Values(nameof(WeightType.F32), nameof(WeightType.BF16))] string type)
    {
        for (int cols = 0; cols <= 257; cols++)
        {
            Check(type, 7, cols, 1, cols);
            Check(type, 5, cols, 6, 1000 + cols);
        }
    }

    [Test]
    public void EveryRowCount0To33([Values(nameof(WeightType.F32), nameof(WeightType.BF16))] string type)
    {
        for (int rows = 0; rows <= 33; rows++) Check(type, rows, 67, 5, rows);
    }

    [Test]
    public void TokenCounts([Values(nameof(WeightType.F32), nameof(WeightType.BF16))] string type,
                            [Values(1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33)] int n)
    {
        Check(type, 37, 301, n, n);
        Check(type, 20, 2304, n, 100 + n); // 3 k-blocks of 768 for n ≥ 4
    }

    [TestCase(nameof(WeightType.BF16), 2048, 2304, 1)] // q
    [TestCase(nameof(WeightType.BF16), 1024, 2304, 3)] // k, v
    [TestCase(nameof(WeightType.BF16), 2304, 2048, 2)] // o
    [TestCase(nameof(WeightType.BF16), 9216, 2304, 1)] // gate, up
    [TestCase(nameof(WeightType.BF16), 2304, 9216, 1)] // down
    [TestCase(nameof(WeightType.BF16), 2304, 9216, 5)] // down, 9 k-blocks
    [TestCase(nameof(WeightType.BF16), 1000, 2304, 1)] // output-head shaped
    [TestCase(nameof(WeightType.F32), 2304, 2048, 1)]
    [TestCase(nameof(WeightType.F32), 1024, 2304, 4)]
    public void GemmaShapes(string type, int rows, int cols, int n) => Check(type, rows, cols, n, rows + cols + n);

    [Test]
    public void PoolGivesBitIdenticalResults([Values(nameof(WeightType.F32), nameof(WeightType.BF16), nameof(WeightType.Q8_0))] string type,
                                            [Values(1, 3, 16)] int n)
    {
        const int Rows = 1003, Cols = 512; // odd row count: last chunk is not a multiple of 4
        using GuardedBuffer<byte> wb = Weights(Enum.Parse<WeightType>(type), Rows, Cols, 7, out WeightMatrix w);
        float[] x = Random(n * Cols, 8);
        var serial = new float[n * Rows];
        var parallel = new float[n * Rows];
        using var pool = new WorkerPool(2);
        MatMul.Linear(w, x, serial, n);
        for (int repeat = 0; repeat < 5; repeat++)
        {
            parallel.AsSpan().Fill(float.NaN);
            MatMul.Linear(w, x, parallel, n, pool);
            Assert.That(parallel, Is.EqualTo(serial).AsCollection, $"repeat {repeat}");
        }
    }

    [Test]
    public void RejectsShortBuffers()
    {
        using GuardedBuffer<byte> wb = Weights(WeightType.F32, 4, 8, 1, out WeightMatrix w);
        Assert.Throws<ArgumentException>(() => MatMul.Linear(w, new float[15], new float[8], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Linear(w, new float[16], new float[7], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Linear(w, new float[16], new float[8], -1));
    }

    [Test]
    public void ScalarReferenceMatchesDouble([Values(nameof(WeightType.F32), nameof(WeightType.BF16))] string type)
    {
        using GuardedBuffer<byte> wb = Weights(Enum.Parse<WeightType>(type), 9, 777, 5, out WeightMatrix w);
        float[] x = Random(3 * 777, 6);
        var y = new float[3 * 9];
        MatMul.LinearScalar(w, x, y, 3, 0, 9);
        (double[] expected, double[] magnitude) = KernelTestData.Linear(w, x, 3);
        AssertClose(y, expected, magnitude, Tol, "scalar");
    }
}
