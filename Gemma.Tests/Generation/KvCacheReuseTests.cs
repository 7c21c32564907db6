using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Generation;
using Gemma.Core.Model;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Generation;

/// <summary>
/// Reusing a KV cache past the sliding window: which prefixes can be kept (<see cref="KvCache.CanTruncateTo"/> at its
/// edges), that a kept prefix gives the logits of a fresh prefill, and that <see cref="TextGenerator"/> falls back to a
/// full prefill — never an error — when the prefix is gone. On the demo model (window 128, chunks of 128) and on
/// <see cref="SmallWindowModel"/> (window 16, chunks of 8).
/// </summary>
[Category("Generation")]
public class KvCacheReuseTests
{
    public static IEnumerable<TestCaseData> Models()
    {
        yield return new TestCaseData("demo").SetArgDisplayNames("window128");
        yield return new TestCaseData("small").SetArgDisplayNames("window16");
    }

    private static GemmaModel ModelNamed(string name) => name == "demo" ? DemoModel.Instance : SmallWindowModel.Instance;

    private static GemmaConfig Sliding(int window) => DemoModel.Instance.Config with { SlidingWindow = window };

    // ---- KvCache at its edges (numbers worked out by hand from the ring size window + chunk − 1) ----

    [Test]
    public void ARingThatHasNotWrappedCanBeRewoundAnywhere()
    {
        using var cache = new KvCache(Sliding(16), contextLength: 100, maxChunk: 4); // sliding rings of 19 slots
        cache.Length = 19; // positions 0..18: no slot written twice
        for (int n = 0; n <= 19; n++) Assert.That(cache.CanTruncateTo(n), Is.True, $"length {n}");
        cache.Truncate(1);
        Assert.That(cache.Length, Is.EqualTo(1));
    }

    [Test]
    public void AWrappedRingKeepsOnlyTheLastChunkOfPositionsOrNothing()
    {
        using var cache = new KvCache(Sliding(16), contextLength: 100, maxChunk: 4);
        cache.Length = 60;
        // A query at n sees n−15…n; position n−15 is intact while n−15 + 19 ≥ 60, i.e. n ≥ 56 = 60 − maxChunk.
        Assert.Multiple(() =>
        {
            Assert.That(cache.CanTruncateTo(56), Is.True);
            Assert.That(cache.CanTruncateTo(55), Is.False);
            Assert.That(cache.CanTruncateTo(1), Is.False);
            Assert.That(cache.CanTruncateTo(0), Is.True, "nothing kept is always possible");
            Assert.That(cache.CanTruncateTo(60), Is.True);
            Assert.That(cache.CanTruncateTo(61), Is.True);
            Assert.That(cache.CanTruncateTo(-1), Is.False);
            Assert.That(cache.LongestKeepablePrefix(59), Is.EqualTo(59));
            Assert.That(cache.LongestKeepablePrefix(56), Is.EqualTo(56));
            Assert.That(cache.LongestKeepablePrefix(55), Is.EqualTo(0));
            Assert.That(cache.LongestKeepablePrefix(1000), Is.EqualTo(60));
        });
        var e = Assert.Throws<GemmaException>(() => cache.Truncate(55))!;
        Assert.That(e.Message, Does.Contain("from 60 to 55"));
        Assert.That(cache.Length, Is.EqualTo(60), "a refused rewind changes nothing");
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Truncate(-1));
        cache.Truncate(70);
        Assert.That(cache.Length, Is.EqualTo(60), "truncating beyond the end keeps everything");
        cache.Truncate(56);
        Assert.That(cache.Length, Is.EqualTo(56));
        cache.Length = 60;
        cache.Truncate(0); // the fallback: a zero-length prefix is always reusable
        Assert.That(cache.Length, Is.EqualTo(0));
    }

    [Test]
    public void GlobalLayersAloneCanAlwaysBeRewound()
    {
        GemmaConfig global = DemoModel.Instance.Config with
        {
            SlidingWindow = null,
            LayerTypes = Enumerable.Repeat(AttentionKind.Full, DemoModel.Instance.Config.NumLayers).ToArray(),
        };
        using var cache = new KvCache(global, contextLength: 300, maxChunk: 4);
        cache.Length = 300;
        for (int n = 0; n <= 300; n++) Assert.That(cache.CanTruncateTo(n), Is.True, $"length {n}");
    }

    [TestCase(16, 4, 100)]
    [TestCase(16, 8, 200)]
    [TestCase(8, 1, 50)]
    [TestCase(128, 128, 1024)]
    public void KeepableLengthsAreZeroAndOneRangeEndingAtTheLength(int window, int chunk, int context)
    {
        // LongestKeepablePrefix relies on this shape instead of searching down; check it against a search down.
        using var cache = new KvCache(Sliding(window), context, chunk);
        for (int length = 0; length <= context; length += Math.Max(1, context / 97))
        {
            cache.Length = length;
            int searched = 0; // the longest n' ≤ n that CanTruncateTo accepts, found by trying every n'
            for (int n = 0; n <= length; n++)
            {
                if (cache.CanTruncateTo(n)) searched = n;
                Assert.That(cache.LongestKeepablePrefix(n), Is.EqualTo(searched), $"length {length}, prefix {n}");
            }
            Assert.That(cache.CanTruncateTo(Math.Max(0, length - chunk)), Is.True, $"length {length}: the last chunk can always be rewound");
        }
    }

    // ---- A kept prefix gives the same logits as a fresh prefill ----

    [TestCaseSource(nameof(Models))]
    public void RewindingToTheShortestKeepablePrefixGivesTheLogitsOfAFreshPrefill(string name)
    {
        GemmaModel model = ModelNamed(name);
        int window = model.Config.SlidingWindow!.Value, chunk = model.Options.PrefillChunk, vocab = model.Config.VocabSize;
        int length = 3 * window + 2 * chunk + 5;
        int[] first = RandomIds(model, length, seed: 1);
        using InferenceContext reused = model.CreateContext();
        reused.Prefill(first);

        int keep = length - chunk; // the shortest prefix still intact (see the KvCache tests above)
        Assert.That(reused.Cache.CanTruncateTo(keep), Is.True);
        Assert.That(reused.Cache.CanTruncateTo(keep - 1), Is.False);
        int[] second = [.. first[..keep], .. RandomIds(model, 40, seed: 2)[1..]];
        reused.Truncate(keep);
        var reusedLogits = new float[(second.Length - keep) * vocab];
        reused.Prefill(second.AsSpan(keep), reusedLogits);

        using InferenceContext fresh = model.CreateContext();
        var freshLogits = new float[second.Length * vocab];
        fresh.Prefill(second, freshLogits);
        AssertClose(reusedLogits, freshLogits.AsSpan(keep * vocab), "prefill after the rewind");

        // And decoding on from there.
        int next = Gemma.Kernels.Activations.ArgMax(freshLogits.AsSpan((second.Length - 1) * vocab, vocab));
        for (int step = 0; step < 6; step++)
        {
            float[] a = reused.Decode(next).ToArray();
            float[] b = fresh.Decode(next).ToArray();
            AssertClose(a, b, $"decode step {step}");
            next = Gemma.Kernels.Activations.ArgMax(b);
        }
    }

    // ---- TextGenerator: reuse what it can, prefill from the start otherwise, same text either way ----

    [TestCaseSource(nameof(Models))]
    public void AReplyLongerThanTheWindowDoesNotBreakTheNextUnrelatedPrompt(string name)
    {
        GemmaModel model = ModelNamed(name);
        int window = model.Config.SlidingWindow!.Value;
        using var generator = new TextGenerator(model);
        int[] first = Prompt(model, "Debian システムでパッケージをインストールするには");
        var longReply = new SamplingOptions { Seed = 5, MaxTokens = window + model.Options.PrefillChunk + 8, LogitBias = NoEnd(model) };
        _ = generator.Generate(first, longReply).ToList();
        Assert.That(generator.Context.Position, Is.GreaterThan(window + model.Options.PrefillChunk), "fixture: the ring wrapped");

        // Shares only <bos> with the cache: nothing can be kept, so everything is prefilled.
        int[] unrelated = Prompt(model, "ファイルシステムの設定");
        string text = string.Concat(generator.Generate(unrelated, SamplingOptions.Greedy with { MaxTokens = 30 }));
        Assert.That(generator.LastStats!.PrefilledTokens, Is.EqualTo(unrelated.Length));
        Assert.That(text, Is.EqualTo(FreshGreedy(model, unrelated, 30)));

        // The first prompt again (its reply far behind the window): prefilled from the start, same answer.
        string again = string.Concat(generator.Generate(first, SamplingOptions.Greedy with { MaxTokens = 30 }));
        Assert.That(again, Is.EqualTo(FreshGreedy(model, first, 30)));
    }

    [TestCaseSource(nameof(Models))]
    public void ManyRequestsSeveralWindowsLongGiveTheTextOfFreshGenerators(string name)
    {
        // One generator serves a mix: conversation turns (prefix kept), "regenerate" (rewind by a whole reply),
        // edits deep in the history and unrelated prompts (nothing kept). Each answer must equal a fresh generator's.
        GemmaModel model = ModelNamed(name);
        GemmaTokenizer tokenizer = model.RequireTokenizer();
        int window = model.Config.SlidingWindow!.Value;
        string[] words = ["パッケージ", "インストール", "設定ファイル", "カーネル", "ディレクトリ", "ネットワーク", "ユーザー", "権限"];
        var rng = new Random(42);
        var conversation = new List<GemmaChatMessage>();
        using var generator = new TextGenerator(model);
        int kept = 0, restarted = 0, maxPosition = 0;
        int replyTokens = Math.Max(24, window / 2), requests = window > 64 ? 10 : 14;
        for (int request = 0; request < requests; request++)
        {
            int action = request < 6 ? 0 : rng.Next(4);
            if (action == 1 && conversation.Count >= 2) conversation.RemoveRange(conversation.Count - 2, 2); // regenerate the last reply
            else if (action == 2 && conversation.Count >= 4) conversation[1] = GemmaChatMessage.Assistant("はい。"); // edit an old turn
            else if (action == 3) conversation.Clear(); // a new, unrelated conversation
            conversation.Add(GemmaChatMessage.User(words[rng.Next(words.Length)] + "について"));
            int[] prompt = ChatTemplate.EncodeToIds(tokenizer, conversation);
            if (prompt.Length + replyTokens >= generator.Context.ContextLength)
            {
                conversation.RemoveRange(0, conversation.Count - 1);
                prompt = ChatTemplate.EncodeToIds(tokenizer, conversation);
            }
            var options = SamplingOptions.Greedy with { MaxTokens = replyTokens };
            string reply = string.Concat(generator.Generate(prompt, options));
            Assert.That(reply, Is.EqualTo(FreshGreedy(model, prompt, replyTokens)), $"request {request}");
            GenerationStats stats = generator.LastStats!;
            if (stats.PrefilledTokens == stats.PromptTokens) restarted++;
            else kept++;
            maxPosition = Math.Max(maxPosition, generator.Context.Position);
            conversation.Add(GemmaChatMessage.Assistant(reply));
        }
        Assert.That(maxPosition, Is.GreaterThan(3 * window), "the conversation ran several windows long");
        Assert.That(kept, Is.GreaterThan(0), "some requests reused the cache");
        Assert.That(restarted, Is.GreaterThan(1), "some requests could not and were prefilled from the start");
    }

    // ---- helpers ----

    private static int[] Prompt(GemmaModel model, string text) => model.RequireTokenizer().EncodeToIds(text, addBos: true);

    private static string FreshGreedy(GemmaModel model, int[] prompt, int maxTokens)
    {
        using var fresh = new TextGenerator(model);
        return string.Concat(fresh.Generate(prompt, SamplingOptions.Greedy with { MaxTokens = maxTokens }));
    }

    private static Dictionary<int, float> NoEnd(GemmaModel model)
    {
        var bias = new Dictionary<int, float>();
        foreach (int id in model.Config.EosTokenIds) bias[id] = float.NegativeInfinity;
        bias[model.RequireTokenizer().EndOfTurnId] = float.NegativeInfinity;
        return bias;
    }

    /// <summary><c>&lt;bos&gt;</c> and then ordinary token ids (above the control tokens), reproducibly.</summary>
    private static int[] RandomIds(GemmaModel model, int length, int seed)
    {
        var rng = new Random(seed);
        int[] ids = new int[length];
        ids[0] = model.Config.BosTokenId;
        for (int i = 1; i < length; i++) ids[i] = rng.Next(300, model.Config.VocabSize);
        return ids;
    }

    private static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        float worst = 0;
        int at = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            float d = Math.Abs(actual[i] - expected[i]);
            if (!(d <= worst)) (worst, at) = (d, i); // NaN counts as worst
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1e-3f), $"{what}: max |Δ| {worst} at {at}");
    }
}
