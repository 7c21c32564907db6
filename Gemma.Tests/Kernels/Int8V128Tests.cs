using System.Runtime.Intrinsics;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Kernels;

/// <summary>
/// The 128-bit int8 primitive every Vector128 int8 kernel is built on: on each instruction set (ARM64 SDOT, ARM64
/// smull/saddlp/addp with <c>DOTNET_EnableArm64Dp=0</c>, x86 SSSE3) it must give SDOT's lanes exactly —
/// lane i = acc[i] + Σ_{k&lt;4} w[4i+k]·x[4i+k] — including the extremes w = −128, x = ±127 (int16 saturation would show).
/// </summary>
[Category("Kernels")]
public class Int8V128Tests
{
    [Test]
    public void DotI8GivesSdotLanesExactly()
    {
        var w = new sbyte[16];
        var x = new sbyte[16];
        var acc = Vector128.Create(1, -2, 300000, -4);
        if (!MatMul.Int8V128.IsSupported)
        {
            // No 128-bit int8 instructions (e.g. DOTNET_EnableHWIntrinsic=0): the int8 types take the scalar path, and
            // the primitive refuses instead of returning wrong lanes.
            Assert.That(() => MatMul.Int8V128.DotI8(acc, Vector128.Create(w), Vector128.Create(x)), Throws.TypeOf<PlatformNotSupportedException>());
            return;
        }
        var rng = new Random(16);
        for (int iter = 0; iter < 20000; iter++)
        {
            for (int j = 0; j < 16; j++)
            {
                (w[j], x[j]) = iter switch
                {
                    0 => ((sbyte)-128, (sbyte)127),
                    1 => ((sbyte)-128, (sbyte)-127),
                    2 => ((sbyte)127, (sbyte)-127),
                    3 => ((sbyte)(j % 2 == 0 ? -128 : 127), (sbyte)(j % 3 == 0 ? 127 : -127)),
                    _ => ((sbyte)rng.Next(-128, 128), (sbyte)rng.Next(-127, 128)),
                };
            }
            Vector128<int> got = MatMul.Int8V128.DotI8(acc, Vector128.Create(w), Vector128.Create(x));
            for (int i = 0; i < 4; i++)
            {
                int expected = acc[i];
                for (int k = 0; k < 4; k++) expected += w[4 * i + k] * x[4 * i + k];
                Assert.That(got[i], Is.EqualTo(expected), $"iteration {iter}, lane {i}");
            }
        }
    }

    /// <summary>
    /// The lane shuffles of the Vector128 int8 GEMM: pairwise adds (block sums from SDOT lanes) and the 32/64-bit zips
    /// (the 4-byte interleave of 4 blocks), exactly as documented, on whichever instruction set runs.
    /// </summary>
    [Test]
    public void PairwiseAddsAndZipsMoveTheDocumentedLanes()
    {
        var a = Vector128.Create(1, -20, 300, 1_000_000);
        var b = Vector128.Create(-7, 11, 100000, -3);
        if (!MatMul.Int8V128.IsSupported)
        {
            // The scalar pass: the int8 types take the scalar path, and the shuffles refuse instead of moving wrong lanes.
            Assert.That(() => MatMul.Int8V128.AddPairs(a, b), Throws.TypeOf<PlatformNotSupportedException>());
            return;
        }
        Assert.That(MatMul.Int8V128.AddPairs(a, b), Is.EqualTo(Vector128.Create(-19, 1_000_300, 4, 99997)));
        Assert.That(MatMul.Int8V128.ZipLow(a, b), Is.EqualTo(Vector128.Create(1, -7, -20, 11)));
        Assert.That(MatMul.Int8V128.ZipHigh(a, b), Is.EqualTo(Vector128.Create(300, 100000, 1_000_000, -3)));
        var c = Vector128.Create(5L, -6L);
        var d = Vector128.Create(long.MinValue, 8L);
        Assert.That(MatMul.Int8V128.ZipLow(c, d), Is.EqualTo(Vector128.Create(5L, long.MinValue)));
        Assert.That(MatMul.Int8V128.ZipHigh(c, d), Is.EqualTo(Vector128.Create(-6L, 8L)));
    }
}
