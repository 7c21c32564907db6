using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>How the gemma command picks its model (the rules are Gemma.Core's ModelLocation; this checks the CLI uses them).</summary>
[Category("Cli")]
public class ModelResolutionCliTests
{
    [Test]
    public void GemmaModelEnvironmentVariableIsUsedAndNamed()
    {
        var r = CliProcess.Run(new Dictionary<string, string?> { ["GEMMA_MODEL"] = Fixtures.DemoModel },
            "generate", "-p", "Debian", "-n", "4", "--seed", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("using GEMMA_MODEL=" + Fixtures.DemoModel));
    }

    [Test]
    public void AMissingGemmaModelIsAClearError()
    {
        var r = CliProcess.Run(new Dictionary<string, string?> { ["GEMMA_MODEL"] = "/nonexistent/model" }, "generate", "-p", "a", "-n", "1");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Stderr, Does.Contain("/nonexistent/model").And.Contain("no such model"));
    }

    [Test]
    public void BundleRefusesToCopyTheDotnetHost()
    {
        using var dir = new Fixtures.TempDir();
        var r = CliProcess.Run("bundle", "--model", Path.Combine(Fixtures.Root, "Gemma.Core", "DemoModel", "gemma2-ja-demo.gguf"), "--out", Path.Combine(dir.Path, "x"));
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("dotnet host"));
    }

    [Test]
    public void ABundledExecutableUsesItsModelFromAnyFolder()
    {
        // Under the JIT the executable is the app host, which needs gemma.dll beside it: the bundle is written next to
        // the tests' copy of it and run from another working directory. (The lone Native AOT file: PackagingTests.)
        string apphost = Path.Combine(AppContext.BaseDirectory, "gemma");
        string bundled = Path.Combine(AppContext.BaseDirectory, "gemma-bundle-test-" + Guid.NewGuid().ToString("N")[..8]);
        using var dir = new Fixtures.TempDir();
        try
        {
            string gguf = Path.Combine(Fixtures.Root, "Gemma.Core", "DemoModel", "gemma2-ja-demo.gguf");
            var made = ExecutableProcess.Run(apphost, dir.Path, null, "bundle", "--model", gguf, "--out", bundled);
            Assert.That(made.ExitCode, Is.EqualTo(0), made.Stderr);
            Assert.That(made.Stderr, Does.Contain("runs on the JIT"));
            var r = ExecutableProcess.Run(bundled, dir.Path, new Dictionary<string, string?> { ["GEMMA_MODEL"] = "/nonexistent" },
                "generate", "-p", "Debian システムでパッケージをインストールするには", "-n", "8", "--seed", "1");
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
            Assert.That(r.Stderr, Does.Contain("bundled in this executable"));
            var direct = CliProcess.Run("generate", "--model", gguf, "-p", "Debian システムでパッケージをインストールするには", "-n", "8", "--seed", "1");
            Assert.That(r.Stdout, Is.EqualTo(direct.Stdout).And.Not.Empty, "the bundled model is the GGUF that was bundled");

            // The same file with its trailer damaged: a clear error, exit 2 — not a crash, not a silent fallback.
            using (var f = new FileStream(bundled, FileMode.Open)) { f.Position = f.Length - 12; f.Write([7, 0, 0, 0]); } // reserved field
            var broken = ExecutableProcess.Run(bundled, dir.Path, null, "generate", "-p", "a", "-n", "1");
            Assert.That(broken.ExitCode, Is.EqualTo(2), broken.Stderr);
            Assert.That(broken.Stderr, Does.Contain("corrupt model bundle trailer"));
        }
        finally
        {
            File.Delete(bundled);
        }
    }
}
