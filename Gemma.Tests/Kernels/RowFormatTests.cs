using System.Runtime.Intrinsics;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Kernels;

/// <summary>
/// The 128-bit row loads (the AdvSimd / SSE path's weight and KV-cache widening) against the scalar loads, bit for bit,
/// for every one of the 65 536 16-bit patterns. Vector128 operations also run (in software) where they are not
/// accelerated, so every test pass checks them; on ARM64 they take the <c>zip1</c> / AdvSimd code.
/// </summary>
[Category("Kernels")]
public unsafe class RowFormatTests
{
    private static readonly ushort[] AllBits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();

    [Test]
    public void Bf16Load128IsExactForAllBitPatterns() => CheckAll<Bf16Row>(bits => BitConverter.Int32BitsToSingle(bits << 16));

    [Test]
    public void F16Load128IsExactForAllBitPatterns() => CheckAll<F16Row>(bits => (float)BitConverter.UInt16BitsToHalf(bits));

    [Test]
    public void F32Load128ReadsFourConsecutiveFloats()
    {
        float[] data = Enumerable.Range(0, 37).Select(i => i * 1.25f - 7).ToArray();
        fixed (float* p = data)
            for (int col = 0; col + 4 <= data.Length; col++)
            {
                Vector128<float> v = F32Row.Load128((byte*)p, col);
                for (int k = 0; k < 4; k++) Assert.That(v[k], Is.EqualTo(data[col + k]), $"col {col} lane {k}");
            }
    }

    private static void CheckAll<TRow>(Func<ushort, float> reference) where TRow : IRowFormat
    {
        fixed (ushort* p = AllBits)
            // Steps of 3 with 4 lanes: every pattern is read, at every alignment (the load is a 64-bit unaligned read).
            for (int c = 0; c < AllBits.Length; c += 3)
            {
                int col = Math.Min(c, AllBits.Length - 4);
                Vector128<float> v = TRow.Load128((byte*)p, col);
                for (int k = 0; k < 4; k++)
                {
                    ushort bits = AllBits[col + k];
                    float expected = reference(bits), scalar = TRow.Load((byte*)p, col + k);
                    if (float.IsNaN(expected))
                    {
                        Assert.That(float.IsNaN(v[k]) && float.IsNaN(scalar), $"0x{bits:X4}");
                        Assert.That(BitConverter.SingleToUInt32Bits(v[k]), Is.EqualTo(BitConverter.SingleToUInt32Bits(scalar)), $"0x{bits:X4}: vector NaN payload differs from scalar");
                    }
                    else
                    {
                        Assert.That(BitConverter.SingleToUInt32Bits(v[k]), Is.EqualTo(BitConverter.SingleToUInt32Bits(expected)), $"0x{bits:X4}");
                        Assert.That(BitConverter.SingleToUInt32Bits(scalar), Is.EqualTo(BitConverter.SingleToUInt32Bits(expected)), $"0x{bits:X4} (scalar)");
                    }
                }
            }
    }
}
