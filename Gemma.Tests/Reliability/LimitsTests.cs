using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Gemma.Tests.Cli;
using Gemma.Tests.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Limits at the boundary: a prompt longer than the context, a token budget beyond it, out-of-range options and
/// files that do not exist give a clear error — a <see cref="GemmaException"/> in the library, exit code 1 (usage,
/// naming the option) or 2 (unusable input) in the CLI, never a crash or a stack trace.
/// </summary>
[Category("Reliability")]
public class LimitsTests
{
    private static GemmaModel Model => DemoModel.Instance;
    private static string LongText => string.Concat(Enumerable.Repeat("パッケージを インストール します。", 40));

    private static GemmaException Fails(TestDelegate action)
    {
        // Any GemmaException (a prompt over the context is the ContextLengthExceededException subclass).
        var e = (GemmaException)Assert.Throws(Is.InstanceOf<GemmaException>(), action)!;
        Assert.That(e.Message, Is.Not.Empty);
        return e;
    }

    [Test]
    public void LibraryPromptLongerThanTheContext()
    {
        int[] prompt = Model.RequireTokenizer().EncodeToIds(LongText, addBos: true);
        Assert.That(prompt, Has.Length.GreaterThan(64), "fixture sanity");
        using var generator = new TextGenerator(Model, contextLength: 64);
        Assert.That(Fails(() => generator.Generate(prompt, SamplingOptions.Greedy).ToList()).Message, Does.Contain("context length is 64"));
        using var ctx = Model.CreateContext(64);
        Assert.That(Fails(() => ctx.Prefill(prompt)).Message, Does.Contain("64"));
        using var chat = Model.CreateChatSession(new ChatSessionOptions { ContextLength = 64 });
        Fails(() => chat.SendAsync(LongText, SamplingOptions.Greedy).ToBlockingEnumerable().ToList());
        Assert.That(chat.History, Is.Empty, "a refused message does not stay in the history");
    }

    [Test]
    public void LibraryTokenBudgetBeyondTheContextEndsAtTheContext()
    {
        // The library does not refuse a budget larger than the room left (a chat cannot know its reply's length);
        // it stops with FinishReason.ContextFull once every position is used. The CLI, which knows both, refuses it.
        int[] prompt = Model.RequireTokenizer().EncodeToIds("このコマンドは", addBos: true);
        const int context = 24;
        using var generator = new TextGenerator(Model, context);
        var options = SamplingOptions.Greedy with { MaxTokens = 1000, LogitBias = new Dictionary<int, float> { [1] = float.NegativeInfinity, [5] = float.NegativeInfinity, [Model.RequireTokenizer().EndOfTurnId] = float.NegativeInfinity } };
        _ = generator.Generate(prompt, options).ToList();
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(generator.Context.Position, Is.EqualTo(context));
        // Every generated token but the last one took a position.
        Assert.That(generator.LastStats.GeneratedTokens, Is.EqualTo(context - prompt.Length + 1));
        // Decoding past the end is an error, not a write outside the cache.
        Assert.That(Fails(() => generator.Context.Decode(2)).Message, Does.Contain("Context full"));
    }

    [Test]
    public void LibraryOutOfRangeOptions()
    {
        Assert.That(Fails(() => GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = 0 })).Message, Does.Contain("Threads"));
        Assert.That(Fails(() => GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { ContextLength = 0 })).Message, Does.Contain("Context length"));
        Assert.That(Fails(() => GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { ContextLength = 2_000_000_000 })).Message, Does.Contain("max_position_embeddings 1024"));
        Assert.That(Fails(() => Model.CreateContext(0)).Message, Does.Contain("at least 1"));
        Assert.That(Fails(() => Model.CreateContext(1025)).Message, Does.Contain("max_position_embeddings"));
        Fails(() => Model.CreateChatSession(new ChatSessionOptions { ContextLength = 0 }));
        int[] prompt = [2, 100];
        using var generator = new TextGenerator(Model, 32);
        foreach ((SamplingOptions bad, string name) in BadSampling)
            Assert.That(Fails(() => generator.Generate(prompt, bad).ToList()).Message, Does.Contain(name));
    }

    private static readonly (SamplingOptions Options, string Property)[] BadSampling =
    [
        (new() { Temperature = -1f }, "Temperature"), (new() { TopP = 0f }, "TopP"), (new() { TopP = 1.5f }, "TopP"),
        (new() { TopK = -1 }, "TopK"), (new() { MinP = 2f }, "MinP"), (new() { MaxTokens = -1 }, "MaxTokens"),
        (new() { RepetitionPenalty = 0f }, "RepetitionPenalty"),
    ];

    [Test]
    public void LibraryFilesThatDoNotExist()
    {
        Assert.That(Fails(() => GemmaModel.Load("/nonexistent/gemma-model")).Message, Does.Contain("/nonexistent/gemma-model"));
        Assert.That(Fails(() => GemmaTokenizer.FromTokenizerJson("/nonexistent/tokenizer.json")).Message, Does.Contain("/nonexistent/tokenizer.json"));
        Assert.That(Fails(() => GemmaTokenizer.FromSentencePieceModel("/nonexistent/tokenizer.model")).Message, Does.Contain("/nonexistent/tokenizer.model"));
        string file = Path.Combine(Fixtures.DemoModel, "config.json");
        Assert.That(Fails(() => GemmaModel.Load(file)).Message, Does.Contain("folder"));
    }

    private static void AssertCli(CliProcess.Result r, int exitCode, params string[] mustContain)
    {
        Assert.That(r.ExitCode, Is.EqualTo(exitCode), r.Stderr);
        foreach (string s in mustContain) Assert.That(r.Stderr, Does.Contain(s));
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(r.Stderr, Does.Not.Contain("Unhandled exception"));
    }

    private static readonly string Demo = Fixtures.DemoModel;

    [Test]
    public void CliPromptLongerThanTheContextAndBudgetBeyondIt()
    {
        AssertCli(CliProcess.Run("generate", "-m", Demo, "--prompt", LongText, "--context", "64", "-n", "4"), 1, "--context", "64");
        AssertCli(CliProcess.Run("generate", "-m", Demo, "--prompt", "a", "-n", "5000"), 1, "--max-tokens", "1024");
        AssertCli(CliProcess.Run("logits", "-m", Demo, "--tokens", "2,3,4,5", "--context", "2", "--out", Path.Combine(Path.GetTempPath(), "never.f32")), 1, "--context");
    }

    [TestCase("--temperature", "-1", "Temperature")]
    [TestCase("--top-p", "0", "TopP")]
    [TestCase("--top-p", "1.5", "TopP")]
    [TestCase("--top-k", "-3", "TopK")]
    [TestCase("--max-tokens", "-1", "MaxTokens")]
    public void CliSamplingOptionOutOfRangeIsTheLibrarysError(string option, string value, string property)
    {
        var r = CliProcess.Run("generate", "-m", Demo, "--prompt", "a", option, value);
        AssertCli(r, 1, option + ":");
        // The same words as the library's.
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        SamplingOptions bad = option switch
        {
            "--temperature" => new() { Temperature = float.Parse(value, inv) },
            "--top-p" => new() { TopP = float.Parse(value, inv) },
            "--top-k" => new() { TopK = int.Parse(value, inv) },
            _ => new() { MaxTokens = int.Parse(value, inv) },
        };
        string library = Assert.Throws<GemmaException>(() => bad.Validate(1000))!.Message;
        Assert.That(library, Does.Contain(property));
        Assert.That(r.Stderr, Does.Contain(library));
    }

    [Test]
    public void CliThreadsAndContextOutOfRange()
    {
        AssertCli(CliProcess.Run("generate", "-m", Demo, "--prompt", "a", "--threads", "0"), 1, "--threads");
        AssertCli(CliProcess.Run("generate", "-m", Demo, "--prompt", "a", "--context", "0"), 1, "--context");
        AssertCli(CliProcess.Run("generate", "-m", Demo, "--prompt", "a", "--context", "2000000000", "-n", "1"), 1, "--context", "max_position_embeddings 1024");
    }

    [Test]
    public void CliFilesThatDoNotExist()
    {
        AssertCli(CliProcess.Run("generate", "-m", "/nonexistent/gemma-model", "--prompt", "a"), 2, "/nonexistent/gemma-model");
        AssertCli(CliProcess.Run("tokenize", "--tokenizer", "/nonexistent/tokenizer.json", "--text", "a"), 2, "/nonexistent/tokenizer.json");
        AssertCli(CliProcess.Run("logits", "-m", Fixtures.Golden("gemma2-micro"), "--tokens", "2,3", "--out", "/nonexistent-dir/x.f32"), 2, "/nonexistent-dir/x.f32");
    }

    [Test]
    public void CliChatMessageLongerThanTheContext()
    {
        // The refused message ends its turn with the library's message; the chat goes on with the next one and
        // exits with the bad-input code at the end because a turn failed.
        var r = CliProcess.RunWithInput(LongText + "\nパッケージ\n", "chat", "-m", Demo, "--context", "48", "-n", "4");
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("1 turn failed"));
        Assert.That(r.Stderr, Does.Contain("the context length is 48"));
        Assert.That(r.Stderr, Does.Contain("generated"), "the next message was answered");
    }
}
