using System.CommandLine;
using System.Text.Json;
using Gemma.Cli.Commands;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>Runs <c>gemma tokenize</c> in-process through System.CommandLine, capturing the console.</summary>
[Category("Tokenizer")]
[NonParallelizable]
public class TokenizeCommandTests
{
    private static (int ExitCode, string Out, string Error) Run(params string[] args)
    {
        var root = new RootCommand("gemma") { TokenizeCommand.Create() };
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (output, error) = (new StringWriter(), new StringWriter());
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            int code = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    private static IEnumerable<TokenizerFixtures.DevCase> Cases() => TokenizerFixtures.DevCases();

    [TestCaseSource(nameof(Cases))]
    public void JsonOutputEqualsGolden(TokenizerFixtures.DevCase c)
    {
        foreach (bool bos in new[] { false, true })
        {
            string[] args = ["tokenize", "--tokenizer", TokenizerFixtures.FullTokenizerPath, "--text", c.Text, "--json"];
            var (code, output, error) = Run(bos ? [.. args, "--bos"] : args);
            Assert.That(code, Is.EqualTo(0), error);
            Assert.That(output.TrimEnd('\n'), Does.Not.Contain("\n"), "exactly one line");
            using var json = JsonDocument.Parse(output);
            Assert.That(json.RootElement.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "ids", "pieces" }));
            Assert.That(json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()),
                Is.EqualTo(bos ? c.IdsWithBos : c.Ids));
            Assert.That(json.RootElement.GetProperty("pieces").EnumerateArray().Select(e => e.GetString()),
                Is.EqualTo(bos ? ["<bos>", .. c.Pieces] : c.Pieces));
        }
    }

    /// <summary>The rendered chat prompt (it starts with the text "&lt;bos&gt;") encodes to the golden chat ids.</summary>
    [Test]
    public void JsonOutputOfRenderedChatsEqualsGolden()
    {
        foreach (var chat in TokenizerFixtures.DevChats())
        {
            var (code, output, error) = Run("tokenize", "--tokenizer", TokenizerFixtures.FullTokenizerPath, "--text", chat.Prompt, "--json");
            Assert.That(code, Is.EqualTo(0), error);
            using var json = JsonDocument.Parse(output);
            Assert.That(json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(chat.Ids));
        }
    }

    [Test]
    public void ModelDirectoryReproducesDemoGoldenPrompts()
    {
        foreach (var (prompt, ids) in TokenizerFixtures.DemoPrompts())
        {
            var (code, output, error) = Run("tokenize", "--model", TokenizerFixtures.DemoModelDir, "--text", prompt, "--json", "--bos");
            Assert.That(code, Is.EqualTo(0), error);
            using var json = JsonDocument.Parse(output);
            Assert.That(json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(ids));
        }
    }

    [Test]
    public void EmojiAreWrittenAsUtf8NotEscaped()
    {
        var (code, output, _) = Run("tokenize", "--tokenizer", TokenizerFixtures.FullTokenizerPath, "--text", "🍣\"\\", "--json");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("\"🍣\""));
        using var json = JsonDocument.Parse(output);
        Assert.That(string.Concat(json.RootElement.GetProperty("pieces").EnumerateArray().Select(e => e.GetString())), Is.EqualTo("🍣\"\\"));
    }

    [Test]
    public void TableOutputListsIdsAndPieces()
    {
        var (code, output, _) = Run("tokenize", "--tokenizer", TokenizerFixtures.FullTokenizerPath, "--text", "Hello, world!");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("   4521  Hello").And.Contain("   2134  ▁world").And.Contain("4 tokens"));
    }

    [Test]
    public void BadArgumentsAndFilesGiveErrorsNotCrashes()
    {
        // (No model and no text: see Cli/TokenizeCliTests, which run the real process with a known environment and stdin.)
        Assert.That(Run("tokenize", "--model", TokenizerFixtures.DemoModelDir, "--tokenizer", TokenizerFixtures.FullTokenizerPath, "--text", "x").ExitCode, Is.EqualTo(1), "usage error");
        var missing = Run("tokenize", "--tokenizer", Path.Combine(TokenizerFixtures.RepoRoot, "no-such-tokenizer.json"), "--text", "x");
        Assert.That(missing.ExitCode, Is.EqualTo(2), "bad input file");
        Assert.That(missing.Error, Does.Contain("no-such-tokenizer.json"));
    }
}
