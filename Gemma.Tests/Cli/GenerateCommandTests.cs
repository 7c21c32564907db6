using NUnit.Framework;

namespace Gemma.Tests.Cli;

[Category("Cli")]
public class GenerateCommandTests
{
    [Test]
    public void MainCommandGeneratesJapaneseFromTheEmbeddedDemoModel()
    {
        // The README's main command, without --model: the embedded default is used and named on stderr.
        var r = CliProcess.Run("generate", "--prompt", "Debian システムでパッケージをインストールするには", "--seed", "1", "-n", "32");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("embedded demo model"));
        int japanese = r.Stdout.Count(ch => ch is >= '\u3040' and <= '\u30FF' or >= '\u4E00' and <= '\u9FFF');
        Assert.That(japanese, Is.GreaterThan(5), r.Stdout);
    }

    [Test]
    public void GreedyTokensOutputEqualsTheReferenceContinuation()
    {
        GoldenCase g = GoldenCase.Demo(0);
        var r = CliProcess.Run("generate", "--tokens", string.Join(",", g.PromptIds), "--temperature", "0", "-n", "8");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        // The reference greedy text of golden 0 starts with "、Debian システムを".
        Assert.That(r.Stdout, Does.StartWith("、Debian システムを"));
    }

    [Test]
    public void ChatModeStopsAtEndOfTurnOrBudget()
    {
        var r = CliProcess.Run("generate", "--chat", "--prompt", "パッケージ", "--seed", "2", "-n", "16");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Match("stop: (EndOfTurn|MaxTokens)"));
        Assert.That(r.Stdout, Does.Not.Contain("<end_of_turn>"));
    }

    [TestCase("--temperature", "-1", "emperature")]
    [TestCase("--top-p", "0", "op")]
    [TestCase("--max-tokens", "-3", "--max-tokens")]
    [TestCase("--context", "0", "--context")]
    public void OutOfRangeOptionsAreUsageErrors(string option, string value, string message)
    {
        var r = CliProcess.Run("generate", "--prompt", "a", option, value);
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Stderr, Does.Contain(message));
    }

    [Test]
    public void PromptPlusBudgetBeyondTheContextIsAUsageError()
    {
        var r = CliProcess.Run("generate", "--prompt", "パッケージ", "--context", "8", "-n", "64");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("exceed the context length 8"));
    }

    [Test]
    public void NeitherPromptNorTokensIsAUsageError()
    {
        var r = CliProcess.Run("generate"); // standard input is an empty pipe here
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("generate needs a prompt").And.Contain("--tokens"));
    }

    [Test]
    public void ChatCommandAnswersFromStandardInput()
    {
        var r = CliProcess.RunWithInput("パッケージ\n/reset\n設定\n/exit\n", "chat", "--seed", "4", "-n", "8");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("(conversation reset)"));
        Assert.That(r.Stderr.Split("generated").Length - 1, Is.EqualTo(2), "two replies with stats lines");
    }
}
