using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;

namespace Gemma.Tests.Kernels;

/// <summary>Reports which SIMD width the kernels take in this process (the test script re-runs with AVX-512 and all intrinsics off).</summary>
[Category("Kernels")]
public class SimdPathTests
{
    [Test]
    public void ReportActivePath()
    {
        string path = Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "scalar";
        TestContext.Out.WriteLine($"Kernel path: {path} (Vector512={Vector512.IsHardwareAccelerated}, Vector256={Vector256.IsHardwareAccelerated}, " +
                                  $"Avx512BW={Avx512BW.IsSupported}, Avx2={Avx2.IsSupported}, AvxVnni={AvxVnni.IsSupported}, Fma={Fma.IsSupported})");
        // .NET 10 folded AVX512F/BW/CD/DQ/VL into one switch: DOTNET_EnableAVX512F=0 no longer turns Vector512 off,
        // DOTNET_EnableAVX512=0 does. Flag a run that meant to test the 256-bit path but did not.
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512F") == "0" && Vector512.IsHardwareAccelerated)
        {
            TestContext.Out.WriteLine("WARNING: DOTNET_EnableAVX512F=0 has no effect on .NET 10; set DOTNET_EnableAVX512=0.");
            Assert.Warn("DOTNET_EnableAVX512F=0 has no effect on .NET 10; set DOTNET_EnableAVX512=0 to exercise the Vector256 path.");
            return;
        }
        Assert.Pass(path);
    }
}
