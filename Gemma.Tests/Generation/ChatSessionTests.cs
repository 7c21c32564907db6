using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Generation;

[Category("Generation")]
public class ChatSessionTests
{
    private static GemmaModel Model => DemoModel.Instance;

    private static string Reply(ChatSession s, string message, SamplingOptions o) =>
        string.Concat(s.SendAsync(message, o).ToBlockingEnumerable());

    [Test]
    public void SecondTurnPrefillsOnlyTheNewTokens()
    {
        using ChatSession session = Model.CreateChatSession();
        var o = SamplingOptions.Greedy with { MaxTokens = 12 };
        string first = Reply(session, "パッケージ", o);
        Assert.That(session.LastStats!.PrefilledTokens, Is.EqualTo(session.LastStats.PromptTokens));

        Reply(session, "インストール", o);
        GemmaTokenizer t = Model.RequireTokenizer();
        int[] whole = ChatTemplate.EncodeToIds(t, session.History.Take(3).ToList());
        int[] before = ChatTemplate.EncodeToIds(t, [GemmaChatMessage.User("パッケージ"), GemmaChatMessage.Assistant(first)], addGenerationPrompt: false);
        Assert.That(session.LastStats!.PromptTokens, Is.EqualTo(whole.Length));
        // Reused: everything of turn one that is still in the cache (the reply up to its last token); prefilled: the rest.
        Assert.That(session.LastStats.PrefilledTokens, Is.LessThan(whole.Length - before.Length + 4));
        Assert.That(session.LastStats.PrefilledTokens, Is.GreaterThanOrEqualTo(whole.Length - before.Length));
    }

    [Test]
    public void MultiTurnRepliesEqualAFreshSessionGivenTheSameConversation()
    {
        var o = SamplingOptions.Greedy with { MaxTokens = 10 };
        using ChatSession session = Model.CreateChatSession();
        string r1 = Reply(session, "ファイルシステム", o);
        string r2 = Reply(session, "ディレクトリ", o);

        // A fresh generator on the full rendered conversation gives the same second reply.
        using var generator = new TextGenerator(Model);
        int[] ids = ChatTemplate.EncodeToIds(Model.RequireTokenizer(),
            [GemmaChatMessage.User("ファイルシステム"), GemmaChatMessage.Assistant(r1), GemmaChatMessage.User("ディレクトリ")]);
        Assert.That(string.Concat(generator.Generate(ids, o)), Is.EqualTo(r2));
    }

    [Test]
    public void ResetForgetsTheConversation()
    {
        var o = SamplingOptions.Greedy with { MaxTokens = 6 };
        using ChatSession session = Model.CreateChatSession();
        string a = Reply(session, "設定", o);
        Reply(session, "方法", o);
        session.Reset();
        Assert.That(session.History, Is.Empty);
        Assert.That(Reply(session, "設定", o), Is.EqualTo(a));
        Assert.That(session.LastStats!.PrefilledTokens, Is.EqualTo(session.LastStats.PromptTokens));
    }

    [Test]
    public void OldTurnsAreDroppedWhenTheContextOverflows()
    {
        var o = SamplingOptions.Greedy with { MaxTokens = 16 };
        using ChatSession session = Model.CreateChatSession(new ChatSessionOptions { ContextLength = 96 });
        for (int i = 0; i < 6; i++) Reply(session, "Debian のパッケージ管理について", o);
        Assert.That(session.DroppedTurns, Is.GreaterThan(0));
        Assert.That(session.LastStats!.PromptTokens + session.LastStats.GeneratedTokens, Is.LessThanOrEqualTo(96));
    }

    [Test]
    public void AMessageThatCannotFitIsAClearErrorAndLeavesTheHistoryAndSessionUsable()
    {
        using ChatSession session = Model.CreateChatSession(new ChatSessionOptions { ContextLength = 64 });
        var o = SamplingOptions.Greedy with { MaxTokens = 4 };
        string first = Reply(session, "設定", o);
        GemmaChatMessage[] before = [.. session.History];
        Assert.That(before, Has.Length.EqualTo(2));

        string huge = string.Concat(Enumerable.Repeat("パッケージ管理 ", 100));
        var e = Assert.Throws<ContextLengthExceededException>(() => Reply(session, huge, SamplingOptions.Greedy))!;
        Assert.That(e.ContextLength, Is.EqualTo(64));
        Assert.That(e.PromptTokens, Is.GreaterThan(64));
        Assert.That(e.Message, Does.Contain("context length is 64"));
        Assert.That(session.History, Is.EqualTo(before), "the rejected message drops nothing");
        Assert.That(session.DroppedTurns, Is.Zero);

        // The session goes on as if the rejected message had not been sent.
        string second = Reply(session, "方法", o);
        using ChatSession fresh = Model.CreateChatSession(new ChatSessionOptions { ContextLength = 64 });
        Reply(fresh, "設定", o);
        Assert.That(second, Is.EqualTo(Reply(fresh, "方法", o)));
        Assert.That(first, Is.Not.Null);
    }

    [TestCase("demo")]
    [TestCase("small")]
    public void AConversationSeveralWindowsLongAnswersEveryTurnAsAFreshGeneratorWould(string name)
    {
        // Turns of replies longer than the sliding window, in a context that overflows (old turns dropped, the rest
        // prefilled again); every reply equals a fresh generator's on the conversation the session sent.
        GemmaModel model = name == "demo" ? Model : SmallWindowModel.Instance;
        int window = model.Config.SlidingWindow!.Value;
        int context = name == "demo" ? 384 : 160;
        var o = SamplingOptions.Greedy with { MaxTokens = window + 24 };
        using ChatSession session = model.CreateChatSession(new ChatSessionOptions { ContextLength = context, SystemPrompt = "簡潔に答えてください。" });
        string[] messages = ["Debian について", "パッケージ", "apt", "dpkg", "カーネル", "ネットワーク"];
        int totalPositions = 0;
        foreach (string message in messages)
        {
            string reply = Reply(session, message, o);
            GenerationStats stats = session.LastStats!;
            Assert.That(stats.GeneratedTokens, Is.GreaterThan(0), message);
            totalPositions += stats.PrefilledTokens + stats.GeneratedTokens;

            List<GemmaChatMessage> sent = [GemmaChatMessage.System("簡潔に答えてください。"), .. session.History.SkipLast(1)];
            int[] prompt = ChatTemplate.EncodeToIds(model.RequireTokenizer(), sent);
            Assert.That(stats.PromptTokens, Is.EqualTo(prompt.Length), message);
            using var fresh = new TextGenerator(model, context);
            Assert.That(reply, Is.EqualTo(string.Concat(fresh.Generate(prompt, o))), message);
            Assert.That(session.History[^1], Is.EqualTo(GemmaChatMessage.Assistant(reply)));
        }
        Assert.That(session.DroppedTurns, Is.GreaterThan(0), "the context overflowed");
        Assert.That(totalPositions, Is.GreaterThan(4 * window));
    }

    [Test]
    public void SixTurnsOf256TokenRepliesOnTheDemoModelAllAnswer()
    {
        // The repro: 256-token replies outgrow the window after one turn and the 1024 context after three.
        Dictionary<int, float> noEnd = new() { [Model.RequireTokenizer().EndOfTurnId] = float.NegativeInfinity };
        foreach (int id in Model.Config.EosTokenIds) noEnd[id] = float.NegativeInfinity;
        var o = new SamplingOptions { Temperature = 0, MaxTokens = 256, LogitBias = noEnd };
        using ChatSession session = Model.CreateChatSession();
        foreach (string message in (string[])["Debian について", "パッケージ", "apt", "dpkg", "debconf", "systemd"])
        {
            string reply = Reply(session, message, o);
            Assert.That(session.LastStats!.GeneratedTokens, Is.EqualTo(256), message);
            Assert.That(reply, Is.Not.Empty);
        }
        Assert.That(session.DroppedTurns, Is.GreaterThan(0));
        Assert.That(session.History, Has.Count.EqualTo(2 * (6 - session.DroppedTurns)));
    }

    [Test]
    public void CancelledReplyKeepsTheSessionUsable()
    {
        using ChatSession session = Model.CreateChatSession();
        using var cts = new CancellationTokenSource();
        int n = 0;
        Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (string _ in session.SendAsync("パッケージ", new SamplingOptions { Seed = 2, MaxTokens = 100 }, cts.Token))
                if (++n == 2) cts.Cancel();
        });
        Assert.That(session.History, Has.Count.EqualTo(2), "the partial reply joins the history");
        Assert.That(Reply(session, "設定", SamplingOptions.Greedy with { MaxTokens = 5 }), Is.Not.Null);
        Assert.That(session.History, Has.Count.EqualTo(4));
    }

    [Test]
    public void ConcurrentSessionsOnOneModelEqualSequentialRuns()
    {
        string[] prompts = ["パッケージ", "ファイル", "設定", "コマンド"];
        var o = new SamplingOptions { Seed = 11, MaxTokens = 24 };
        string[] sequential = prompts.Select(p => { using var s = Model.CreateChatSession(); return Reply(s, p, o); }).ToArray();
        var concurrent = new string[prompts.Length];
        Parallel.For(0, prompts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using var s = Model.CreateChatSession();
            concurrent[i] = Reply(s, prompts[i], o);
        });
        Assert.That(concurrent, Is.EqualTo(sequential));
    }
}
