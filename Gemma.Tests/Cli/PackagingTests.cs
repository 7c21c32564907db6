using System.IO.Compression;
using System.Xml.Linq;
using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>
/// What a user installs: the NuGet packages, the .NET tool and the lone Native AOT executable, each used from a folder
/// that holds nothing else. Slow by nature (a Native AOT compile: ~40 s of CPU); the rest packs the build that
/// scripts/test.sh just made (--no-build).
/// </summary>
[Category("Packaging")]
[NonParallelizable]
public class PackagingTests
{
    private const string Prompt = "Debian システムでパッケージをインストールするには";

    private static CliProcess.Result Dotnet(string cwd, IDictionary<string, string?>? env, params string[] args)
    {
        var r = ExecutableProcess.Run(TimeSpan.FromMinutes(10), "dotnet", cwd, env, args);
        Assert.That(r.ExitCode, Is.EqualTo(0), $"dotnet {string.Join(' ', args)}\n{r.Stdout}\n{r.Stderr}");
        return r;
    }

    private static XElement Nuspec(string nupkg)
    {
        using ZipArchive zip = ZipFile.OpenRead(nupkg);
        ZipArchiveEntry entry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using Stream s = entry.Open();
        return XElement.Load(s);
    }

    private static string? Meta(XElement nuspec, string name) =>
        nuspec.Elements().First(e => e.Name.LocalName == "metadata").Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    [Test]
    public void PackagesCarryTheirMetadataAndTheToolInstallsAndGeneratesAnywhere()
    {
        using var dir = new Fixtures.TempDir();
        string feed = Path.Combine(dir.Path, "feed"), tools = Path.Combine(dir.Path, "tools"), elsewhere = Path.Combine(dir.Path, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        foreach (string project in new[] { "Gemma.Kernels", "Gemma.Core", "Gemma.Cli" })
            Dotnet(Fixtures.Root, null, "pack", Path.Combine(project, project + ".csproj"), "-c", "Release", "--no-build", "-o", feed, "-nologo");

        foreach (string id in new[] { "Gemma.Kernels", "Gemma.Core", "Gemma.Cli" })
        {
            string nupkg = Directory.GetFiles(feed, id + ".*.nupkg").Single(f => !f.EndsWith(".snupkg", StringComparison.Ordinal));
            Assert.That(Directory.GetFiles(feed, id + ".*.snupkg"), Has.Length.EqualTo(1), $"{id}: symbols package");
            XElement nuspec = Nuspec(nupkg);
            Assert.That(Meta(nuspec, "license"), Is.EqualTo("MIT"), id);
            Assert.That(Meta(nuspec, "readme"), Is.EqualTo("README.md"), id);
            Assert.That(Meta(nuspec, "description"), Does.Contain("Gemma").And.Not.EqualTo("Package Description"), id);
            Assert.That(Meta(nuspec, "tags"), Does.Contain("gemma"), id);
            XElement repository = nuspec.Descendants().Single(e => e.Name.LocalName == "repository");
            Assert.That((string?)repository.Attribute("type"), Is.EqualTo("git"), id);
            Assert.That((string?)repository.Attribute("url"), Does.StartWith("https://"), id);
            using ZipArchive zip = ZipFile.OpenRead(nupkg);
            Assert.That(zip.GetEntry("README.md"), Is.Not.Null, $"{id}: README in the package");
        }
        XElement tool = Nuspec(Directory.GetFiles(feed, "Gemma.Cli.*.nupkg").Single(f => !f.EndsWith(".snupkg", StringComparison.Ordinal)));
        Assert.That(tool.Descendants().Any(e => e.Name.LocalName == "packageType" && (string?)e.Attribute("name") == "DotnetTool"), Is.True);

        // A private NuGet cache: an earlier install of the same version must not be what runs.
        var env = new Dictionary<string, string?> { ["NUGET_PACKAGES"] = Path.Combine(dir.Path, "nuget-cache") };
        Dotnet(elsewhere, env, "tool", "install", "Gemma.Cli", "--tool-path", tools, "--add-source", feed, "--prerelease");
        var r = ExecutableProcess.Run(Path.Combine(tools, "gemma"), elsewhere, null, "generate", "-n", "8", "--seed", "1", "-p", Prompt);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("embedded demo model"));
        // The installed tool is this build: the same text as the tests' own gemma.dll.
        Assert.That(r.Stdout, Is.EqualTo(CliProcess.Run("generate", "-n", "8", "--seed", "1", "-p", Prompt).Stdout).And.Not.Empty);
    }

    [Test]
    public void TheNativeAotExecutableWorksAloneAndBundlesAModel()
    {
        using var dir = new Fixtures.TempDir();
        string publish = Path.Combine(dir.Path, "publish"), alone = Path.Combine(dir.Path, "alone"), edge = Path.Combine(dir.Path, "edge");
        Directory.CreateDirectory(alone);
        Directory.CreateDirectory(edge);
        Dotnet(Fixtures.Root, null, "publish", Path.Combine("Gemma.Cli", "Gemma.Cli.csproj"), "-c", "Release", "-r", "linux-x64",
            "-p:PublishAot=true", "-o", publish, "-nologo");
        string exe = Path.Combine(alone, "gemma");
        File.Copy(Path.Combine(publish, "gemma"), exe);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(exe, File.GetUnixFileMode(Path.Combine(publish, "gemma")));
        Directory.Delete(publish, recursive: true); // nothing of the publish folder may be needed

        var r = ExecutableProcess.Run(exe, alone, null, "generate", "-n", "8", "--temperature", "0", "-p", Prompt);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("embedded demo model"));
        Assert.That(r.Stdout, Is.Not.Empty);
        Assert.That(Directory.GetFileSystemEntries(alone), Is.EqualTo(new[] { exe }), "the executable needs no file beside it");

        // llamafile-style: the executable plus a GGUF in one file, copied alone to another folder.
        using var temp = new Fixtures.TempDir();
        string gguf = Path.Combine(temp.Path, "demo-q8.gguf");
        var q = CliProcess.Run("quantize", "--model", Fixtures.DemoModel, "--type", "q8_0", "--out", gguf);
        Assert.That(q.ExitCode, Is.EqualTo(0), q.Stderr);
        string bundled = Path.Combine(temp.Path, "gemma-demo-q8");
        var b = ExecutableProcess.Run(exe, alone, null, "bundle", "--model", gguf, "--out", bundled);
        Assert.That(b.ExitCode, Is.EqualTo(0), b.Stderr);
        Assert.That(b.Stderr, Does.Not.Contain("JIT"));
        string edgeExe = Path.Combine(edge, "gemma-demo-q8");
        File.Move(bundled, edgeExe);
        var e = ExecutableProcess.Run(edgeExe, edge, null, "info");
        Assert.That(e.ExitCode, Is.EqualTo(0), e.Stderr);
        Assert.That(e.Stderr, Does.Contain("bundled in this executable"));
        var g = ExecutableProcess.Run(edgeExe, edge, null, "generate", "-n", "8", "--temperature", "0", "-p", Prompt);
        var direct = ExecutableProcess.Run(exe, alone, null, "generate", "--model", gguf, "-n", "8", "--temperature", "0", "-p", Prompt);
        Assert.That(g.ExitCode, Is.EqualTo(0), g.Stderr);
        Assert.That(g.Stdout, Is.EqualTo(direct.Stdout).And.Not.Empty, "the bundled model is the Q8_0 GGUF");
    }

    /// <summary>
    /// The prompts the ARM64 executable must continue exactly as the x86 build does: the demo's own kind of text, one
    /// made up for this test (not in the demo's training prose), and one in English that the Japanese model can only
    /// ramble on.
    /// </summary>
    private static readonly string[] Arm64Prompts =
    [
        Prompt,
        "古いノートパソコンに軽量なデスクトップ環境を入れて、ファイルサーバーとして再利用する手順は",
        "How do I mount a USB stick on a Raspberry Pi?",
    ];

    [Test]
    public void TheLinuxArm64ExecutableGivesTheX86TextUnderQemu()
    {
        // scripts/install-test-deps.sh installs qemu-user-static, clang, lld and the arm64 libraries; without them this
        // fails (it is the only check that the cross-published binary works), it is never skipped.
        string? qemu = new[] { "qemu-aarch64-static", "qemu-aarch64" }
            .Select(name => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists))
            .FirstOrDefault(p => p != null);
        Assert.That(qemu, Is.Not.Null, "qemu-aarch64(-static) is not installed: run scripts/install-test-deps.sh as root");

        // The script users run: it cross-compiles on this machine and smoke-tests the result under qemu itself. About 40 s
        // of CPU; 1-3 min of wall time on a quiet 2-core machine, more than 15 min when 8 builds share it.
        var publish = ExecutableProcess.Run(TimeSpan.FromMinutes(30), "bash", Fixtures.Root, null, "scripts/publish-aot.sh", "linux-arm64");
        Assert.That(publish.ExitCode, Is.EqualTo(0), $"{publish.Stdout}\n{publish.Stderr}");
        string built = Path.Combine(Fixtures.Root, "artifacts", "aot", "linux-arm64-default", "gemma");
        using var dir = new Fixtures.TempDir();
        string exe = Path.Combine(dir.Path, "gemma");
        File.Copy(built, exe);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(exe, File.GetUnixFileMode(built));
        var header = new byte[20];
        using (FileStream f = File.OpenRead(exe)) f.ReadExactly(header);
        Assert.That(header[18..20], Is.EqualTo(new byte[] { 0xB7, 0x00 }), "an ELF for AArch64 (e_machine 183)");

        CliProcess.Result Arm64(params string[] args) =>
            ExecutableProcess.Run(TimeSpan.FromMinutes(5), qemu!, dir.Path, null, ["./gemma", .. args]);

        var info = Arm64("info");
        Assert.That(info.ExitCode, Is.EqualTo(0), info.Stderr);
        Assert.That(info.Stderr, Does.Contain("embedded demo model"));
        Assert.That(info.Stdout, Does.Contain("kernels:      Vector128 (AdvSimd"), "the arm64 build takes the AdvSimd path");

        foreach (string prompt in Arm64Prompts)
        {
            string[] args = ["generate", "-n", "24", "--temperature", "0", "-p", prompt];
            var arm = Arm64(args);
            Assert.That(arm.ExitCode, Is.EqualTo(0), arm.Stderr);
            Assert.That(arm.Stdout, Is.EqualTo(CliProcess.Run(args).Stdout).And.Not.Empty, prompt);
        }
    }
}
