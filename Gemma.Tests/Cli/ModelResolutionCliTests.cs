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
}
