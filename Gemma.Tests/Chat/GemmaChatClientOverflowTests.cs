using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Gemma.Tests.Generation;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using static Gemma.Tests.Chat.ChatClientTestHelpers;
using AIMessage = Microsoft.Extensions.AI.ChatMessage;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;

namespace Gemma.Tests.Chat;

/// <summary>
/// The client past the sliding window and past the context: pooled generators are never poisoned, a conversation that
/// does not fit is a <see cref="ContextLengthExceededException"/> (or trimmed, when opted in), and the client stays usable.
/// </summary>
[Category("Chat")]
public class GemmaChatClientOverflowTests
{
    [TestCase("demo")]
    [TestCase("small")]
    public async Task OneReplyLongerThanTheWindowDoesNotBreakLaterUnrelatedCalls(string name)
    {
        // One generator, so every call reuses (or must reset) the cache the long reply left behind.
        GemmaModel model = name == "demo" ? Demo : SmallWindowModel.Instance;
        int window = model.Config.SlidingWindow!.Value;
        var sampling = SamplingOptions.Greedy with { LogitBias = NoEnd(model) };
        using var client = new GemmaChatClient(model, new GemmaChatClientOptions { MaxConcurrentGenerations = 1, DefaultSampling = sampling });
        int longReply = window + model.Options.PrefillChunk + 8;
        ChatResponse first = await client.GetResponseAsync([User("Debian について")], new ChatOptions { MaxOutputTokens = longReply });
        Assert.That(first.Usage!.OutputTokenCount, Is.EqualTo(longReply));

        foreach (string text in (string[])["パッケージ", "ファイルシステムの設定", "Debian について", "カーネル"])
        {
            ChatResponse r = await client.GetResponseAsync([User(text)], new ChatOptions { MaxOutputTokens = 24 });
            Assert.That(r.Text, Is.EqualTo(Fresh(model, sampling with { MaxTokens = 24 }, GemmaMessage.User(text))), text);
        }
    }

    [Test]
    public async Task AConversationSeveralWindowsLongBetweenUnrelatedCallsEqualsFreshGenerators()
    {
        // A keyed conversation grows past several windows on a window-16 model while unrelated calls (the same two
        // generators) come between its turns; every answer equals a fresh generator's on the same messages.
        GemmaModel model = SmallWindowModel.Instance;
        var sampling = SamplingOptions.Greedy with { MaxTokens = 30 };
        using var client = new GemmaChatClient(model, new GemmaChatClientOptions { MaxConcurrentGenerations = 2, DefaultSampling = sampling });
        var history = new List<AIMessage>();
        var gemma = new List<GemmaMessage>();
        string[] turns = ["パッケージ", "インストール", "設定ファイル", "カーネル", "ネットワーク", "ユーザー"];
        int cachedTurns = 0;
        foreach (string turn in turns)
        {
            history.Add(User(turn));
            gemma.Add(GemmaMessage.User(turn));
            ChatResponse r = await client.GetResponseAsync(history, new ChatOptions { ConversationId = "long" });
            Assert.That(r.Text, Is.EqualTo(Fresh(model, sampling, [.. gemma])), turn);
            if (r.Usage!.CachedInputTokenCount > 0) cachedTurns++;
            history.Add(Assistant(r.Text));
            gemma.Add(GemmaMessage.Assistant(r.Text));

            string other = turn + "とは";
            ChatResponse u = await client.GetResponseAsync([User(other)]);
            Assert.That(u.Text, Is.EqualTo(Fresh(model, sampling, GemmaMessage.User(other))), other);
        }
        Assert.That(Encode([.. gemma]).Length, Is.GreaterThan(4 * SmallWindowModel.Window), "several windows long");
        Assert.That(cachedTurns, Is.GreaterThanOrEqualTo(turns.Length - 1), "the keyed conversation kept its cache");
    }

    [Test]
    public async Task AConversationLongerThanTheContextIsContextLengthExceededAndTheClientGoesOn()
    {
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { ContextLength = 128, MaxConcurrentGenerations = 1 });
        AIMessage[] conversation = [.. LongConversation(8), User("まとめて")];
        int needed = Encode(ToGemma(conversation)).Length;
        Assert.That(needed, Is.GreaterThan(128), "fixture: the conversation does not fit");

        var e = Assert.ThrowsAsync<ContextLengthExceededException>(() => client.GetResponseAsync(conversation, Greedy(8)))!;
        Assert.That(e.ContextLength, Is.EqualTo(128));
        Assert.That(e.PromptTokens, Is.EqualTo(needed));
        Assert.That(e.Message, Does.Contain("context length is 128").And.Contain(needed.ToString()));
        Assert.ThrowsAsync<ContextLengthExceededException>(async () => await Stream(client, conversation, Greedy(8)));

        ChatResponse r = await client.GetResponseAsync([User("パッケージ")], Greedy(12));
        Assert.That(r.Text, Is.EqualTo(GeneratorGreedy(Encode(GemmaMessage.User("パッケージ")), 12).Text));
    }

    [Test]
    public async Task DropOldestMessagesAnswersWithTheFewestOldExchangesDropped()
    {
        const int context = 160, maxTokens = 24;
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { ContextLength = context, DropOldestMessages = true });
        AIMessage[] conversation = [SystemMessage("簡潔に。"), .. LongConversation(8), User("まとめて")];
        GemmaMessage[] all = ToGemma(conversation);
        Assert.That(Encode(all).Length, Is.GreaterThan(context), "fixture: the conversation does not fit");

        // Expected: keep the system message, drop whole exchanges from the oldest until the prompt leaves
        // min(maxTokens, context / 4) tokens for the reply.
        GemmaMessage[] kept = all;
        for (int dropped = 0; Encode(kept).Length + Math.Min(maxTokens, context / 4) > context; dropped++)
            kept = [all[0], .. all.Skip(1 + 2 * (dropped + 1))];
        Assert.That(kept.Length, Is.GreaterThan(2), "fixture: some history is kept");

        ChatResponse r = await client.GetResponseAsync(conversation, Greedy(maxTokens));
        Assert.That(r.Usage!.InputTokenCount, Is.EqualTo(Encode(kept).Length));
        Assert.That(r.Text, Is.EqualTo(GeneratorGreedy(Encode(kept), maxTokens).Text));

        // A last message that cannot fit even alone is still an error, and the client goes on.
        string huge = string.Concat(Enumerable.Repeat("パッケージ管理 ", 200));
        var e = Assert.ThrowsAsync<ContextLengthExceededException>(() => client.GetResponseAsync([User("a"), Assistant("b"), User(huge)], Greedy(4)))!;
        Assert.That(e.ContextLength, Is.EqualTo(context));
        Assert.That((await client.GetResponseAsync([User("設定")], Greedy(4))).Text, Is.EqualTo(GeneratorGreedy(Encode(GemmaMessage.User("設定")), 4).Text));
    }

    private static AIMessage[] LongConversation(int exchanges) => Enumerable.Range(0, exchanges)
        .SelectMany(i => new[] { User($"質問 {i}: Debian のパッケージ管理について"), Assistant($"回答 {i}: apt と dpkg でパッケージをインストールします。") })
        .ToArray();

    private static GemmaMessage[] ToGemma(AIMessage[] messages) => [.. ChatOptionsMapping.ToGemmaMessages(messages)];

    private static string Fresh(GemmaModel model, SamplingOptions options, params GemmaMessage[] conversation)
    {
        using var generator = new TextGenerator(model);
        int[] prompt = Gemma.Core.Tokenization.ChatTemplate.EncodeToIds(model.RequireTokenizer(), conversation);
        return string.Concat(generator.Generate(prompt, options));
    }

    private static Dictionary<int, float> NoEnd(GemmaModel model)
    {
        var bias = new Dictionary<int, float> { [model.RequireTokenizer().EndOfTurnId] = float.NegativeInfinity };
        foreach (int id in model.Config.EosTokenIds) bias[id] = float.NegativeInfinity;
        return bias;
    }
}
