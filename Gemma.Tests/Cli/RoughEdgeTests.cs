using System.Text.Json;
using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>The small things a first-time user trips over, each checked on the real executable.</summary>
[Category("Cli")]
public class RoughEdgeTests
{
    [Test]
    public void ParseErrorsAreOneShortLineAndAHintOnStderr()
    {
        var r = CliProcess.Run("generate", "--bogus", "-p", "x");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stdout, Is.Empty, "no help dump on stdout");
        string[] lines = r.Stderr.Trim().Split('\n');
        Assert.That(lines[0], Does.StartWith("gemma: ").And.Contain("--bogus"));
        Assert.That(lines[^1], Is.EqualTo("Run 'gemma generate --help' for usage."));
        Assert.That(lines, Has.Length.LessThanOrEqualTo(3));

        var type = CliProcess.Run("generate", "-p", "x", "--temperature", "warm");
        Assert.That(type.ExitCode, Is.EqualTo(1));
        Assert.That(type.Stderr, Does.StartWith("gemma: ").And.Contain("warm"));
        var command = CliProcess.Run("nosuch");
        Assert.That(command.ExitCode, Is.EqualTo(1));
        Assert.That(command.Stderr, Does.Contain("nosuch").And.Contain("Run 'gemma --help'"));
    }

    [Test]
    public void HelpStillPrintsOnStdout()
    {
        var r = CliProcess.Run("generate", "--help");
        Assert.That(r.ExitCode, Is.EqualTo(0));
        Assert.That(r.Stdout, Does.Contain("--prompt-file"));
    }

    [Test]
    public void ThreadsAboveTheCoresAreCappedWithAWarning()
    {
        var r = CliProcess.Run("bench", "--threads", "1000", "-p", "8", "-g", "4", "-r", "1", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain($"using {Environment.ProcessorCount}").And.Contain("warning"));
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.That(json.RootElement.GetProperty("threads").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
    }

    [Test]
    public void BenchWarmsUpBeforeTheTimedReps()
    {
        var r = CliProcess.Run("bench", "-p", "8", "-g", "4", "-r", "2", "-t", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        int warm = r.Stderr.IndexOf("warm-up", StringComparison.Ordinal), first = r.Stderr.IndexOf("rep 1/2", StringComparison.Ordinal);
        Assert.That(warm, Is.GreaterThanOrEqualTo(0), r.Stderr);
        Assert.That(first, Is.GreaterThan(warm), "the warm-up comes before the first timed rep");
        Assert.That(r.Stderr.Split("warm-up").Length - 1, Is.EqualTo(1));
    }

    [Test]
    public void InfoPrintsTheEpsilonInShortestForm()
    {
        var r = CliProcess.Run("info");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stdout, Does.Contain("rms eps 1e-06").And.Contain("rope theta:   10000 "));
    }

    [TestCase(1e-6, "1e-06")]
    [TestCase((double)1e-6f, "1e-06")]
    [TestCase(1e-5, "1e-05")]
    [TestCase(10000.0, "10000")]
    [TestCase(0.1, "0.1")]
    [TestCase(1.0 / 3.0, "0.3333333333333333")]
    public void NumbersAreWrittenShortestRoundTrip(double value, string expected) =>
        Assert.That(Gemma.Cli.Commands.InfoCommand.Number(value), Is.EqualTo(expected));

    [Test]
    public void TokenizeFindsTheModelLikeTheOtherCommands()
    {
        var fallback = CliProcess.Run("tokenize", "--text", "パッケージ", "--json");
        Assert.That(fallback.ExitCode, Is.EqualTo(0), fallback.Stderr);
        Assert.That(fallback.Stderr, Does.Contain("embedded demo model"));
        var named = CliProcess.Run("tokenize", "-m", Fixtures.DemoModel, "--text", "パッケージ", "--json");
        Assert.That(named.ExitCode, Is.EqualTo(0), named.Stderr);
        Assert.That(named.Stdout, Is.EqualTo(fallback.Stdout));
        var env = CliProcess.Run(new Dictionary<string, string?> { ["GEMMA_MODEL"] = Fixtures.DemoModel }, "tokenize", "--text", "パッケージ", "--json");
        Assert.That(env.Stderr, Does.Contain("GEMMA_MODEL"));
        Assert.That(env.Stdout, Is.EqualTo(fallback.Stdout));

        var none = CliProcess.Run("tokenize");
        Assert.That(none.ExitCode, Is.EqualTo(1));
        Assert.That(none.Stderr, Does.Contain("--text"));
    }
}
