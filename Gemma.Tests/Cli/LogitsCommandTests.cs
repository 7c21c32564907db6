using Gemma.Tests.Model;
using NUnit.Framework;

namespace Gemma.Tests.Cli;

[Category("Cli")]
public class LogitsCommandTests
{
    [TestCase("gemma2-small", false)]
    [TestCase("gemma2-small", true)]
    [TestCase("gemma2-micro", true)]
    public void LogitsCommandReproducesTheGoldenPrefill(string name, bool decode)
    {
        GoldenCase g = GoldenCase.Tiny(name);
        using var dir = new Fixtures.TempDir();
        string output = Path.Combine(dir.Path, "logits.f32");
        var args = new List<string> { "logits", "--model", g.ModelDir, "--tokens", string.Join(",", g.PromptIds), "--out", output };
        if (decode) args.Add("--decode");
        var r = CliProcess.Run(args.ToArray());
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Stderr);
        GoldenLogitsTests.AssertClose(Fixtures.ReadF32(output), g.PrefillLogits, g.Vocab, decode ? "cli --decode" : "cli prefill");
        Assert.That(Directory.GetFiles(dir.Path), Has.Length.EqualTo(1), "no temporary file left behind");
    }

    [TestCase("--tokens", "2,x,3", "not a token id")]
    [TestCase("--tokens", "2,99999999", "outside the vocabulary")]
    [TestCase("--tokens", ",", "at least one token")]
    public void BadTokenListsAreUsageErrors(string option, string value, string message)
    {
        var r = CliProcess.Run("logits", "--model", Fixtures.Golden("gemma2-micro"), option, value, "--out", Path.Combine(Path.GetTempPath(), "never.f32"));
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain(message));
    }

    [Test]
    public void MissingModelIsAClearError()
    {
        var r = CliProcess.Run("logits", "--model", "/nonexistent/model", "--tokens", "2", "--out", Path.Combine(Path.GetTempPath(), "never.f32"));
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.Contain("/nonexistent/model"));
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "no stack trace for a user error");
    }

    [Test]
    public void UnknownOptionIsAUsageError()
    {
        var r = CliProcess.Run("logits", "--bogus");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0));
        Assert.That(r.Stderr + r.Stdout, Does.Contain("--bogus"));
    }

    [Test]
    public void ZeroThreadsIsRejected()
    {
        var r = CliProcess.Run("logits", "--threads", "0", "--tokens", "2", "--out", "x.f32");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("--threads must be at least 1"));
    }
}
