using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

/// <summary>
/// The Vector128 K-quant kernels (ARM64 SDOT; SSSE3 on x86) — decode row dots and the packed 4-row GEMM — give the
/// scalar reference's float32 results bit for bit (exact integer sums per super-block, then the reference's float
/// step), for every token count, odd row counts (a zero-padded row group) and an odd last token. Runs the Vector128
/// kernels directly whatever the preferred width, so the AVX-512 and AVX2 passes test them too; on the scalar path
/// (no 128-bit int8 instructions) <see cref="MatMul.Linear"/> itself is the reference and must equal it.
/// </summary>
[Category("Kernels")]
public unsafe class KQuantV128Tests
{
    private static readonly string[] Types = [nameof(WeightType.Q4_K), nameof(WeightType.Q5_K), nameof(WeightType.Q6_K)];

    [Test]
    public void MatchesTheScalarReferenceBitForBit([ValueSource(nameof(Types))] string typeName,
        [Values(1, 2, 3, 5, 17)] int n, [Values(256, 2304)] int cols)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        int rows = 11 + n % 3;                           // 11–13: a last group of 3, 4 or 1 rows
        using GuardedBuffer<byte> wb = MatMulKQuantTests.RandomWeights(type, rows, cols, n * 31 + cols, out WeightMatrix w,
            subnormalScales: n % 2 == 1);
        float[] x = Random(n * cols, n + cols);
        var expected = new float[n * rows];
        MatMul.LinearQuantScalar(w, x, expected, n);
        using var y = new GuardedBuffer<float>((long)n * rows);
        y.Span.Fill(float.NaN);
        if (MatMul.Int8V128.IsSupported) MatMul.LinearKQuantV128(w, x, y.Span, n);
        else MatMul.Linear(w, x, y.Span, n);
        y.AssertFrontIntact();
        for (int i = 0; i < n * rows; i++)
            if (BitConverter.SingleToInt32Bits(y.Span[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                Assert.Fail($"{type} {rows}×{cols} n={n}: token {i / rows} row {i % rows}: {y.Span[i]:R} != scalar {expected[i]:R}");
    }
}
