using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Kernels;

/// <summary>
/// Which SIMD width the kernels take in this process. scripts/test.sh re-runs the kernel tests with AVX-512, then AVX2
/// (the Vector128 path) and then all intrinsics switched off, and says which path it expects through <c>GEMMA_EXPECTED_KERNEL_PATH</c>: a pass that
/// silently kept the wide path (e.g. because a runtime switch was renamed) fails here instead of testing nothing new.
/// </summary>
[Category("Kernels")]
public class SimdPathTests
{
    [Test]
    public void ActivePathIsTheOneTheRunAskedFor()
    {
        string path = Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256"
                    : Vector128.IsHardwareAccelerated ? "Vector128" : "scalar";
        Assert.That(KernelPath.Width, Is.EqualTo(path), "KernelPath names a different width than the kernels dispatch on");
        TestContext.Out.WriteLine($"Kernel path: {KernelPath.Current} (Vector512={Vector512.IsHardwareAccelerated}, Vector256={Vector256.IsHardwareAccelerated}, " +
                                  $"Vector128={Vector128.IsHardwareAccelerated}, Avx512BW={Avx512BW.IsSupported}, Avx2={Avx2.IsSupported}, " +
                                  $"AvxVnni={AvxVnni.IsSupported}, Fma={Fma.IsSupported}, AdvSimd={AdvSimd.IsSupported}, Dp={Dp.IsSupported})");
        // .NET 10 folded AVX512F/BW/CD/DQ/VL into one switch: DOTNET_EnableAVX512=0 turns Vector512 off
        // (DOTNET_EnableAVX512F=0 alone no longer does).
        string? expected = Environment.GetEnvironmentVariable("GEMMA_EXPECTED_KERNEL_PATH");
        if (expected != null)
        {
            Assert.That(path, Is.EqualTo(expected), "the test pass did not switch the kernels to the path it meant to test");
            return;
        }
        // No expectation named: then this pass must not have narrowed the SIMD paths (a pass that does must say which
        // path it expects), and the kernels must take a path the hardware really has — not fall back to scalar.
        string[] switches = Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith("DOTNET_Enable", StringComparison.OrdinalIgnoreCase) || k.StartsWith("COMPlus_Enable", StringComparison.OrdinalIgnoreCase)
                        || k.Equals("DOTNET_PreferredVectorBitWidth", StringComparison.OrdinalIgnoreCase))
            .ToArray();
        Assert.That(switches, Is.Empty, "this pass changes instruction-set switches but does not set GEMMA_EXPECTED_KERNEL_PATH");
        if (path == "Vector512") Assert.That(Avx512F.IsSupported, "Vector512 is accelerated only with AVX-512");
        if (Avx2.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported)
            Assert.That(path, Is.Not.EqualTo("scalar"), "SIMD hardware is present but the kernels take the scalar path");
    }
}
