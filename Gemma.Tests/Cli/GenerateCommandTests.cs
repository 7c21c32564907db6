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

[Category("Cli")]
public class GenerateConstraintCommandTests
{
    [Test]
    public void JsonSchemaFile_StdoutIsOnlyAValidValue()
    {
        using var dir = new Fixtures.TempDir();
        string schema = """{"type":"object","properties":{"name":{"type":"string","maxLength":10},"n":{"type":"integer","minimum":1,"maximum":9}},"required":["name","n"],"additionalProperties":false}""";
        string file = Path.Combine(dir.Path, "s.json");
        File.WriteAllText(file, schema);
        var r = CliProcess.Run("generate", "--chat", "--prompt", "JSON", "--json-schema", file, "--seed", "3", "-n", "48");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Constraints.JsonSchemaConstraintTests.AssertValid(schema, r.Stdout.Trim());
    }

    [Test]
    public void JsonAndGrammarFlags()
    {
        var any = CliProcess.Run("generate", "--prompt", "データ", "--json", "--seed", "1", "-n", "40");
        Assert.That(any.ExitCode, Is.EqualTo(0), any.Stderr);
        if (!any.Stderr.Contains("incomplete")) Assert.DoesNotThrow(() => System.Text.Json.JsonDocument.Parse(any.Stdout));

        using var dir = new Fixtures.TempDir();
        string file = Path.Combine(dir.Path, "g.gbnf");
        File.WriteAllText(file, "root ::= (\"はい\" | \"いいえ\") \"。\"\n");
        var g = CliProcess.Run("generate", "--prompt", "答え:", "--grammar", file, "--seed", "2", "-n", "8");
        Assert.That(g.ExitCode, Is.EqualTo(0), g.Stderr);
        Assert.That(g.Stdout.TrimEnd('\n', '\r'), Is.AnyOf("はい。", "いいえ。"));
    }

    [TestCase("--json-schema", "{\"type\":\"object\",\"not\":{}}", "'not'")]
    [TestCase("--grammar", "root ::= missing", "undefined rule 'missing'")]
    public void BadSchemaOrGrammar_IsAClearError(string option, string content, string message)
    {
        using var dir = new Fixtures.TempDir();
        string file = Path.Combine(dir.Path, "f");
        File.WriteAllText(file, content);
        var r = CliProcess.Run("generate", "--prompt", "a", option, file);
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Stderr, Does.Contain(message));
    }

    [Test]
    public void TwoConstraintsOrAMissingFile_AreUsageErrors()
    {
        var both = CliProcess.Run("generate", "--prompt", "a", "--json", "--regex", "a+");
        Assert.That(both.Stderr, Does.Contain("at most one"));
        var missing = CliProcess.Run("generate", "--prompt", "a", "--grammar", "/nonexistent/g.gbnf");
        Assert.That(missing.Stderr, Does.Contain("cannot read"));
    }
}
