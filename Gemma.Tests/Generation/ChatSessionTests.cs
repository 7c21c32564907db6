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
    public void AMessageThatCannotFitIsAClearErrorAndLeavesTheSessionUsable()
    {
        using ChatSession session = Model.CreateChatSession(new ChatSessionOptions { ContextLength = 64 });
        string huge = string.Concat(Enumerable.Repeat("パッケージ管理 ", 100));
        Assert.Throws<GemmaException>(() => Reply(session, huge, SamplingOptions.Greedy));
        Assert.That(session.History, Is.Empty);
        Assert.That(Reply(session, "設定", SamplingOptions.Greedy with { MaxTokens = 4 }), Is.Not.Null);
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
