using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Generation;

[Category("Generation")]
public class TextGeneratorTests
{
    private static GemmaModel Model => DemoModel.Instance;

    private static int[] Prompt(string text) => Model.RequireTokenizer().EncodeToIds(text, addBos: true);

    [Test]
    public void GreedyGenerationEqualsTheReferenceGreedyText()
    {
        // The demo model's golden.json: greedy continuation computed by transformers.
        GoldenCase g = GoldenCase.Demo(0);
        using var generator = new TextGenerator(Model);
        string text = string.Concat(generator.Generate(g.PromptIds, SamplingOptions.Greedy with { MaxTokens = g.GreedyIds.Length }));
        string expected = Model.RequireTokenizer().Decode(g.GreedyIds);
        Assert.That(text, Is.EqualTo(expected));
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
        Assert.That(generator.LastStats.GeneratedTokens, Is.EqualTo(g.GreedyIds.Length));
    }

    [Test]
    public void SameSeedSameTextDifferentSeedDifferentText()
    {
        int[] prompt = Prompt("このコマンドは");
        string Run(int seed)
        {
            using var generator = new TextGenerator(Model);
            return string.Concat(generator.Generate(prompt, new SamplingOptions { Seed = seed, MaxTokens = 40 }));
        }
        Assert.That(Run(7), Is.EqualTo(Run(7)));
        Assert.That(Run(7), Is.Not.EqualTo(Run(8)));
    }

    [Test]
    public void StopSequenceEndsTheTextBeforeIt()
    {
        GoldenCase g = GoldenCase.Demo(0);
        using var generator = new TextGenerator(Model);
        string full = Model.RequireTokenizer().Decode(g.GreedyIds);
        string stop = "インストール"; // appears in the greedy text (after "、Debian システムを")
        int at = full.IndexOf(stop, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThan(0), "fixture sanity: the stop text occurs");
        string text = string.Concat(generator.Generate(g.PromptIds, SamplingOptions.Greedy with { MaxTokens = 40, StopSequences = [stop] }));
        Assert.That(text, Is.EqualTo(full[..at]));
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.StopSequence));
    }

    [Test]
    public void EndIdsStopGenerationAndAreNotShown()
    {
        // Bias <end_of_turn> to win at once: generation stops after one token and prints nothing.
        int endOfTurn = Model.RequireTokenizer().EndOfTurnId;
        using var generator = new TextGenerator(Model);
        var options = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [endOfTurn] = 1000f } };
        string text = string.Concat(generator.Generate(Prompt("テスト"), options));
        Assert.That(text, Is.Empty);
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.EndOfTurn));
        Assert.That(generator.LastStats.GeneratedTokens, Is.EqualTo(1));
    }

    [Test]
    public void SecondCallReusesTheCachedPrefix()
    {
        using var generator = new TextGenerator(Model);
        int[] first = Prompt("Debian システムでパッケージをインストールするには");
        string reply = string.Concat(generator.Generate(first, SamplingOptions.Greedy with { MaxTokens = 5 }));
        IReadOnlyList<int> cached = generator.CachedTokens.ToArray();
        Assert.That(cached, Has.Count.EqualTo(first.Length + 4), "prompt + generated tokens except the last (not yet decoded)");
        int[] second = [.. cached, .. Prompt("設定")[1..]];
        _ = string.Concat(generator.Generate(second, SamplingOptions.Greedy with { MaxTokens = 3 }));
        Assert.That(generator.LastStats!.PrefilledTokens, Is.EqualTo(second.Length - cached.Count));

        // And the logits are the same as from a fresh context: reuse changes nothing but the work done.
        using var fresh = new TextGenerator(Model);
        string a = string.Concat(fresh.Generate(second, SamplingOptions.Greedy with { MaxTokens = 8 }));
        string b = string.Concat(generator.Generate(second, SamplingOptions.Greedy with { MaxTokens = 8 }));
        Assert.That(b, Is.EqualTo(a));
    }

    [Test]
    public void CancellationStopsWithinOneTokenAndTheGeneratorStaysUsable()
    {
        using var generator = new TextGenerator(Model);
        using var cts = new CancellationTokenSource();
        int pieces = 0;
        foreach (string _ in generator.Generate(Prompt("このオプションは"), new SamplingOptions { Seed = 1, MaxTokens = 200 }, cts.Token))
        {
            if (++pieces == 3) cts.Cancel();
        }
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.Cancelled));
        Assert.That(generator.LastStats.GeneratedTokens, Is.LessThanOrEqualTo(4));
        GoldenCase g = GoldenCase.Demo(0);
        string text = string.Concat(generator.Generate(g.PromptIds, SamplingOptions.Greedy with { MaxTokens = g.GreedyIds.Length }));
        Assert.That(text, Is.EqualTo(Model.RequireTokenizer().Decode(g.GreedyIds)));
    }

    [Test]
    public void PromptLongerThanTheContextIsAClearError()
    {
        using var generator = new TextGenerator(Model, contextLength: 16);
        int[] prompt = Enumerable.Repeat(100, 16).Prepend(2).ToArray();
        var e = Assert.Throws<ContextLengthExceededException>(() => generator.Generate(prompt, SamplingOptions.Greedy).ToList())!;
        Assert.That(e.Message, Does.Contain("context length is 16"));
        Assert.That((e.PromptTokens, e.ContextLength), Is.EqualTo((17, 16)));
    }

    [Test]
    public void GenerationStopsWhenTheContextIsFull()
    {
        using var generator = new TextGenerator(Model, contextLength: 24);
        int[] prompt = Prompt("パッケージ");
        _ = generator.Generate(prompt, new SamplingOptions { Seed = 3, MaxTokens = 100, LogitBias = new Dictionary<int, float> { [1] = float.NegativeInfinity, [5] = float.NegativeInfinity } }).ToList();
        Assert.That(generator.LastStats!.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(generator.Context.Position, Is.EqualTo(24));
    }

    [Test]
    public void InvalidSamplingOptionsAreRejectedBeforeWork()
    {
        using var generator = new TextGenerator(Model);
        Assert.Throws<GemmaException>(() => generator.Generate(Prompt("a"), new SamplingOptions { Temperature = -1 }));
        Assert.Throws<GemmaException>(() => generator.Generate(Prompt("a"), new SamplingOptions { TopP = 0 }));
        Assert.Throws<GemmaException>(() => generator.Generate([], SamplingOptions.Greedy));
        Assert.Throws<GemmaException>(() => generator.Generate([2, 999_999], SamplingOptions.Greedy));
    }

    [Test]
    public void ArgMaxOfDecodedLogitsMatchesGreedyIds()
    {
        // Token-level API: prefill + decode + argmax reproduce the same ids as the text API.
        GoldenCase g = GoldenCase.Demo(1);
        using var ctx = Model.CreateContext();
        ReadOnlySpan<float> logits = ctx.Prefill(g.PromptIds);
        var ids = new List<int>();
        for (int i = 0; i < 10; i++)
        {
            int next = Activations.ArgMax(logits);
            ids.Add(next);
            logits = ctx.Decode(next);
        }
        Assert.That(ids, Is.EqualTo(g.GreedyIds.Take(10)));
    }
}
