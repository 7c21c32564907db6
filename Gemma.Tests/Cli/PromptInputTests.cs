using NUnit.Framework;

namespace Gemma.Tests.Cli;

/// <summary>Prompts from files, standard input and '@' text; prompts of any size get a clear error.</summary>
[Category("Cli")]
public class PromptInputTests
{
    private const string Prompt = "Debian システムでパッケージをインストールするには";

    [Test]
    public void APromptStartingWithAtIsTextNotAResponseFile()
    {
        var r = CliProcess.Run("generate", "-p", "@admin さん、こんにちは", "-n", "4", "--seed", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        Assert.That(r.Stderr, Does.Match(@"\[prompt \d+ tok"));
        var t = CliProcess.Run("tokenize", "--text", "@admin", "--json");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.Stderr);
        Assert.That(t.Stdout, Does.Contain("\"@"));
    }

    [Test]
    public void PromptFileStdinAndInlinePromptGiveTheSameText()
    {
        using var dir = new Fixtures.TempDir();
        string file = Path.Combine(dir.Path, "prompt.txt");
        File.WriteAllText(file, Prompt);
        string[] greedy = ["--temperature", "0", "-n", "12"];
        var inline = CliProcess.Run(["generate", "-p", Prompt, .. greedy]);
        var fromFile = CliProcess.Run(["generate", "--prompt-file", file, .. greedy]);
        var piped = CliProcess.RunWithInput(Prompt, ["generate", .. greedy]);
        var dash = CliProcess.RunWithInput(Prompt, ["generate", "--prompt-file", "-", .. greedy]);
        Assert.That(inline.ExitCode, Is.EqualTo(0), inline.Stderr);
        Assert.That(inline.Stdout.Trim(), Is.Not.Empty);
        Assert.That(fromFile.Stdout, Is.EqualTo(inline.Stdout), fromFile.Stderr);
        Assert.That(piped.Stdout, Is.EqualTo(inline.Stdout), piped.Stderr);
        Assert.That(dash.Stdout, Is.EqualTo(inline.Stdout), dash.Stderr);

        var tokens = CliProcess.Run("tokenize", "--prompt-file", file, "--json", "--bos");
        var tokensInline = CliProcess.Run("tokenize", "--text", Prompt, "--json", "--bos");
        Assert.That(tokens.ExitCode, Is.EqualTo(0), tokens.Stderr);
        Assert.That(tokens.Stdout, Is.EqualTo(tokensInline.Stdout));
        Assert.That(CliProcess.RunWithInput(Prompt, "tokenize", "--json", "--bos").Stdout, Is.EqualTo(tokensInline.Stdout));
    }

    [Test]
    public void A200kCharacterPromptIsAClearErrorFromAFileOrStdin()
    {
        using var dir = new Fixtures.TempDir();
        string file = Path.Combine(dir.Path, "huge.txt");
        string huge = string.Concat(Enumerable.Repeat("パッケージ管理システム。", 200_000 / 12));
        File.WriteAllText(file, huge);
        foreach (var r in new[] { CliProcess.Run("generate", "--prompt-file", file), CliProcess.RunWithInput(huge, "generate") })
        {
            Assert.That(r.ExitCode, Is.EqualTo(1), r.Stderr);
            Assert.That(r.Stderr, Does.Contain("a context of 1024 tokens holds at most"));
            Assert.That(r.Stdout.Trim(), Is.Empty);
        }
    }

    [Test]
    public void APromptOverTheContextInTokensIsAClearError()
    {
        // Few enough characters to be read, too many tokens: each of these words is several tokens.
        string text = string.Concat(Enumerable.Repeat("パッケージ ", 1200));
        var r = CliProcess.RunWithInput(text, "generate");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.Match("the prompt has [0-9]+ tokens but the context length is 1024"));
    }

    [Test]
    public void PromptOptionMistakesAreUsageErrors()
    {
        var both = CliProcess.Run("generate", "-p", "a", "--prompt-file", "x.txt");
        Assert.That(both.ExitCode, Is.EqualTo(1));
        Assert.That(both.Stderr, Does.Contain("not both"));
        var missing = CliProcess.Run("generate", "--prompt-file", "/no/such/prompt.txt");
        Assert.That(missing.ExitCode, Is.EqualTo(1));
        Assert.That(missing.Stderr, Does.Contain("/no/such/prompt.txt"));
        var tokensAndPrompt = CliProcess.Run("generate", "-p", "a", "--tokens", "2,3");
        Assert.That(tokensAndPrompt.ExitCode, Is.EqualTo(1));
    }
}
