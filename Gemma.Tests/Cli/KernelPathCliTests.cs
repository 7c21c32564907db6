using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>
/// <c>gemma info</c> and <c>gemma bench</c> name the SIMD path the kernels take, and the name follows the runtime's
/// instruction-set switches (a user who sees "scalar" on an ARM box learns why it is slow). The linux-arm64 value is
/// checked under qemu by <see cref="PackagingTests"/>.
/// </summary>
[Category("Cli")]
public class KernelPathCliTests
{
    private static string InfoKernels(IDictionary<string, string?>? env)
    {
        var r = CliProcess.Run(env, "info", "--model", Fixtures.DemoModel);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        string[] lines = r.Stdout.Split('\n').Where(l => l.StartsWith("kernels:", StringComparison.Ordinal)).ToArray();
        Assert.That(lines, Has.Length.EqualTo(1), r.Stdout);
        return lines[0]["kernels:".Length..].Trim();
    }

    [Test]
    public void InfoNamesThePathThisMachineTakesAndFollowsTheRuntimeSwitches()
    {
        // Without switches: the widest path the hardware accelerates, named with its instruction sets.
        string widest = Vector512.IsHardwareAccelerated ? "Vector512 (AVX-512)"
            : Vector256.IsHardwareAccelerated ? "Vector256 (AVX2"
            : Vector128.IsHardwareAccelerated ? "Vector128 (" : "scalar";
        string native = InfoKernels(null);
        Assert.That(native, Does.StartWith(widest));
        Assert.That(native, Is.EqualTo(KernelPath.Current), "the CLI reports what the kernels in this process report");

        // All intrinsics off: every kernel runs its scalar reference, and info says so.
        Assert.That(InfoKernels(new Dictionary<string, string?> { ["DOTNET_EnableHWIntrinsic"] = "0" }), Is.EqualTo("scalar"));
        if (Sse2.IsSupported)
        {
            // 128-bit vectors only (the x86 run of the code ARM64 takes): Vector128 on SSE, with FMA where the CPU has it.
            string v128 = InfoKernels(new Dictionary<string, string?> { ["DOTNET_PreferredVectorBitWidth"] = "128" });
            Assert.That(v128, Is.EqualTo(Fma.IsSupported ? "Vector128 (SSE, FMA)" : "Vector128 (SSE)"));
        }
        if (Avx512F.IsSupported)
            Assert.That(InfoKernels(new Dictionary<string, string?> { ["DOTNET_EnableAVX512"] = "0" }), Does.StartWith("Vector256 (AVX2"));
    }

    [Test]
    public void BenchReportsTheKernelPathInJsonAndText()
    {
        var json = CliProcess.Run("bench", "--model", Fixtures.DemoModel, "-p", "8", "-g", "2", "-r", "1", "-t", "1", "--no-limits", "--json");
        Assert.That(json.ExitCode, Is.EqualTo(0), json.Stderr);
        using JsonDocument doc = JsonDocument.Parse(json.Stdout);
        Assert.That(doc.RootElement.GetProperty("kernel_path").GetString(), Is.EqualTo(KernelPath.Current).And.Not.Empty);

        var text = CliProcess.Run(new Dictionary<string, string?> { ["DOTNET_EnableHWIntrinsic"] = "0" },
            "bench", "--model", Fixtures.DemoModel, "-p", "8", "-g", "2", "-r", "1", "-t", "1", "--no-limits");
        Assert.That(text.ExitCode, Is.EqualTo(0), text.Stderr);
        Assert.That(text.Stdout, Does.Contain("kernels: scalar\n"));
    }
}
