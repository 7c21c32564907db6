using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using static Gemma.Tests.Chat.ChatClientTestHelpers;

namespace Gemma.Tests.Chat;

[Category("Chat")]
public class GemmaChatClientTests
{
    [Test]
    public async Task StreamingTextEqualsNonStreamingTextForGreedy()
    {
        using var client = new GemmaChatClient(Demo);
        ChatResponse response = await client.GetResponseAsync([User("パッケージの管理")], Greedy(20));
        var (streamed, last, updates) = await Stream(client, [User("パッケージの管理")], Greedy(20));
        Assert.That(response.Text, Is.Not.Empty);
        Assert.That(streamed, Is.EqualTo(response.Text));
        Assert.That(updates, Is.GreaterThan(2), "text arrives in pieces, then a final update");
        Assert.That(last.FinishReason, Is.EqualTo(response.FinishReason));
        Assert.That(last.Contents.OfType<UsageContent>().Single().Details.OutputTokenCount, Is.EqualTo(response.Usage!.OutputTokenCount));
    }

    [Test]
    public async Task TemperatureZeroEqualsTextGeneratorGreedyOnTheSameConversation()
    {
        // The client's defaults keep top-k/top-p/min-p on; with temperature 0 the choice must still be the argmax.
        using var client = new GemmaChatClient(Demo);
        var (expected, expectedStats) = GeneratorGreedy(Encode(GemmaChatMessage.User("ファイルシステム"),
            GemmaChatMessage.Assistant("ディスク"), GemmaChatMessage.User("マウント")), 24);
        ChatResponse r = await client.GetResponseAsync(
            [User("ファイルシステム"), Assistant("ディスク"), User("マウント")], Greedy(24));
        Assert.That(r.Text, Is.EqualTo(expected));
        Assert.That(r.Usage!.OutputTokenCount, Is.EqualTo(expectedStats.GeneratedTokens));
    }

    [Test]
    public async Task UsageCountsEqualTheTemplatedPromptAndTheGeneratedTokens()
    {
        using var client = new GemmaChatClient(Demo);
        int expectedInput = Encode(GemmaChatMessage.User("設定ファイル"), GemmaChatMessage.Assistant("はい"), GemmaChatMessage.User("場所")).Length;
        ChatResponse r = await client.GetResponseAsync([User("設定ファイル"), Assistant("はい"), User("場所")], Greedy(7));
        Assert.That(r.Usage!.InputTokenCount, Is.EqualTo(expectedInput));
        Assert.That(r.Usage.OutputTokenCount, Is.EqualTo(Stats(r).GeneratedTokens));
        Assert.That(r.Usage.TotalTokenCount, Is.EqualTo(expectedInput + r.Usage.OutputTokenCount));
        Assert.That(r.ModelId, Is.EqualTo("gemma2-ja-demo"));
        Assert.That(r.Messages, Has.Count.EqualTo(1));
        Assert.That(r.Messages[0].Role, Is.EqualTo(ChatRole.Assistant));
    }

    [Test]
    public async Task MaxOutputTokensEndsWithLengthAndThatManyTokens()
    {
        using var client = new GemmaChatClient(Demo);
        ChatResponse r = await client.GetResponseAsync([User("Debian のパッケージ")], new ChatOptions { Seed = 5, MaxOutputTokens = 6 });
        Assert.That(r.FinishReason, Is.EqualTo(ChatFinishReason.Length));
        Assert.That(r.Usage!.OutputTokenCount, Is.EqualTo(6));
        Assert.That(Stats(r).FinishReason, Is.EqualTo(FinishReason.MaxTokens));
    }

    [Test]
    public async Task SameSeedSameTextDifferentSeedDifferentText()
    {
        using var client = new GemmaChatClient(Demo);
        async Task<string> Run(long seed) =>
            (await client.GetResponseAsync([User("このコマンドは")], new ChatOptions { Seed = seed, MaxOutputTokens = 32 })).Text;
        string a = await Run(7);
        Assert.That(await Run(7), Is.EqualTo(a));
        Assert.That(await Run(8), Is.Not.EqualTo(a));
    }

    [Test]
    public async Task StopSequenceEndsTheReplyBeforeItWithStop()
    {
        using var client = new GemmaChatClient(Demo);
        var (full, _) = GeneratorGreedy(Encode(GemmaChatMessage.User("パッケージのインストール")), 40);
        Assert.That(full.Length, Is.GreaterThan(6), "fixture sanity: a reply long enough to cut");
        string stop = full.Substring(full.Length / 2, 2);
        int at = full.IndexOf(stop, StringComparison.Ordinal);
        var options = Greedy(40);
        options.StopSequences = [stop];
        ChatResponse r = await client.GetResponseAsync([User("パッケージのインストール")], options);
        Assert.That(r.Text, Is.EqualTo(full[..at]));
        Assert.That(r.FinishReason, Is.EqualTo(ChatFinishReason.Stop));
        Assert.That(Stats(r).FinishReason, Is.EqualTo(FinishReason.StopSequence));
    }

    [Test]
    public async Task SystemMessageAndInstructionsAreFoldedIntoTheFirstUserTurn()
    {
        using var client = new GemmaChatClient(Demo);
        GemmaChatMessage[] expectedConversation = [GemmaChatMessage.System("日本語で答えてください。"), GemmaChatMessage.User("カーネル")];
        var (expected, _) = GeneratorGreedy(Encode(expectedConversation), 16);
        int expectedInput = Encode(expectedConversation).Length;

        ChatResponse viaMessage = await client.GetResponseAsync([SystemMessage("日本語で答えてください。"), User("カーネル")], Greedy(16));
        Assert.That(viaMessage.Text, Is.EqualTo(expected));
        Assert.That(viaMessage.Usage!.InputTokenCount, Is.EqualTo(expectedInput));

        var options = Greedy(16);
        options.Instructions = "日本語で答えてください。";
        ChatResponse viaInstructions = await client.GetResponseAsync([User("カーネル")], options);
        Assert.That(viaInstructions.Text, Is.EqualTo(expected));
        Assert.That(viaInstructions.Usage!.InputTokenCount, Is.EqualTo(expectedInput));
    }

    [Test]
    public async Task SecondCallOfAConversationPrefillsOnlyTheNewTokens()
    {
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 2 });
        var o = Greedy(12);
        o.ConversationId = "conv-a";
        ChatResponse first = await client.GetResponseAsync([User("パッケージ")], o);
        Assert.That(first.ConversationId, Is.EqualTo("conv-a"));
        Assert.That(Stats(first).PrefilledTokens, Is.EqualTo(Stats(first).PromptTokens));

        // Another conversation in between takes the other generator; conv-a's cache survives.
        var other = Greedy(12);
        other.ConversationId = "conv-b";
        await client.GetResponseAsync([User("まったく別の話題")], other);

        ChatResponse second = await client.GetResponseAsync([User("パッケージ"), Assistant(first.Text), User("インストール")], o);
        int whole = Encode(GemmaChatMessage.User("パッケージ"), GemmaChatMessage.Assistant(first.Text), GemmaChatMessage.User("インストール")).Length;
        int before = Gemma.Core.Tokenization.ChatTemplate.EncodeToIds(Demo.RequireTokenizer(),
            [GemmaChatMessage.User("パッケージ"), GemmaChatMessage.Assistant(first.Text)], addGenerationPrompt: false).Length;
        Assert.That(Stats(second).PromptTokens, Is.EqualTo(whole));
        // Reused: turn one as far as it is in the cache (the reply up to its last token); prefilled: the rest.
        Assert.That(Stats(second).PrefilledTokens, Is.GreaterThanOrEqualTo(whole - before));
        Assert.That(Stats(second).PrefilledTokens, Is.LessThan(whole - before + 4));
        Assert.That(second.Usage!.CachedInputTokenCount, Is.EqualTo(whole - Stats(second).PrefilledTokens));

        // Reuse changes only the work: the reply equals a fresh generator's.
        var (expected, _) = GeneratorGreedy(Encode(GemmaChatMessage.User("パッケージ"), GemmaChatMessage.Assistant(first.Text), GemmaChatMessage.User("インストール")), 12);
        Assert.That(second.Text, Is.EqualTo(expected));
    }

    [Test]
    public async Task ConcurrentCallsFromFourThreadsEqualSequentialCalls()
    {
        string[] prompts = ["パッケージ", "ファイル", "設定", "コマンド"];
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 4 });
        ChatOptions Options(int i) => new() { Seed = 11, MaxOutputTokens = 24, ConversationId = i % 2 == 0 ? null : "c" + i };
        var sequential = new string[prompts.Length];
        for (int i = 0; i < prompts.Length; i++)
            sequential[i] = (await client.GetResponseAsync([User(prompts[i])], Options(i))).Text;

        var concurrent = new string[prompts.Length];
        using var start = new Barrier(prompts.Length);
        Thread[] threads = Enumerable.Range(0, prompts.Length).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            concurrent[i] = client.GetResponseAsync([User(prompts[i])], Options(i)).GetAwaiter().GetResult().Text;
        })).ToArray();
        foreach (Thread t in threads) t.Start();
        foreach (Thread t in threads) t.Join();
        Assert.That(concurrent, Is.EqualTo(sequential));
        Assert.That(sequential.Distinct().Count(), Is.GreaterThan(1), "fixture sanity: the prompts give different replies");
    }

    [Test]
    public async Task TwoInterleavedStreamsOfOneConversationBothFinishAndEqualSequentialCalls()
    {
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 2 });
        ChatOptions o = Greedy(10);
        o.ConversationId = "same";
        string a = (await client.GetResponseAsync([User("パッケージ")], o)).Text;
        string b = (await client.GetResponseAsync([User("カーネル")], o)).Text;

        // One thread, two open streams with the same id: the second must not wait for the first to end.
        await using var first = client.GetStreamingResponseAsync([User("パッケージ")], o).GetAsyncEnumerator();
        await using var second = client.GetStreamingResponseAsync([User("カーネル")], o).GetAsyncEnumerator();
        var textA = new System.Text.StringBuilder();
        var textB = new System.Text.StringBuilder();
        bool moreA = true, moreB = true;
        while (moreA || moreB)
        {
            if (moreA && (moreA = await first.MoveNextAsync())) textA.Append(first.Current.Text);
            if (moreB && (moreB = await second.MoveNextAsync())) textB.Append(second.Current.Text);
        }
        Assert.That((textA.ToString(), textB.ToString()), Is.EqualTo((a, b)));
        Assert.That(a, Is.Not.EqualTo(b), "fixture sanity");
    }

    [Test]
    public async Task StreamedUpdatesCombineIntoTheSameResponse()
    {
        using var client = new GemmaChatClient(Demo);
        ChatOptions o = new() { Seed = 3, MaxOutputTokens = 16 };
        ChatResponse direct = await client.GetResponseAsync([User("ネットワーク設定")], o);
        ChatResponse combined = await client.GetStreamingResponseAsync([User("ネットワーク設定")], o).ToChatResponseAsync();
        Assert.That(combined.Text, Is.EqualTo(direct.Text));
        Assert.That(combined.FinishReason, Is.EqualTo(direct.FinishReason));
        Assert.That((combined.Usage!.InputTokenCount, combined.Usage.OutputTokenCount, combined.Usage.TotalTokenCount),
            Is.EqualTo((direct.Usage!.InputTokenCount, direct.Usage.OutputTokenCount, direct.Usage.TotalTokenCount)));
        Assert.That(combined.ModelId, Is.EqualTo("gemma2-ja-demo"));
    }

    [Test]
    public async Task MoreCallsThanGeneratorsWaitAndStillGiveTheSameResults()
    {
        string[] prompts = ["カーネル", "ネットワーク", "ユーザー"];
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 1 });
        var sequential = new List<string>();
        foreach (string p in prompts) sequential.Add((await client.GetResponseAsync([User(p)], Greedy(10))).Text);
        string[] concurrent = await Task.WhenAll(prompts.Select(p => Task.Run(async () => (await client.GetResponseAsync([User(p)], Greedy(10))).Text)));
        Assert.That(concurrent, Is.EqualTo(sequential));
    }

    [Test]
    public async Task CancellationThrowsWithinOneTokenAndTheClientStaysUsable()
    {
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 1 });
        using var cts = new CancellationTokenSource();
        int updates = 0, afterCancel = 0;
        Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (ChatResponseUpdate _ in client.GetStreamingResponseAsync([User("パッケージ")], new ChatOptions { Seed = 2, MaxOutputTokens = 200 }, cts.Token))
            {
                if (cts.IsCancellationRequested) afterCancel++;
                if (++updates == 3) cts.Cancel();
            }
        });
        Assert.That(updates, Is.EqualTo(3));
        Assert.That(afterCancel, Is.Zero, "no text after the cancel");
        Assert.CatchAsync<OperationCanceledException>(() => client.GetResponseAsync([User("a")], Greedy(4), cts.Token));

        // The single generator was returned and is usable; its reply equals an independent one.
        ChatResponse r = await client.GetResponseAsync([User("設定")], Greedy(8));
        Assert.That(r.Text, Is.EqualTo(GeneratorGreedy(Encode(GemmaChatMessage.User("設定")), 8).Text));
    }

    [Test]
    public void GetServiceReturnsMetadataTheModelAndTheClient()
    {
        using var client = new GemmaChatClient(Demo);
        var metadata = client.GetService<ChatClientMetadata>();
        Assert.That(metadata!.ProviderName, Is.EqualTo("Gemma.NET"));
        Assert.That(metadata.DefaultModelId, Is.EqualTo("gemma2-ja-demo"));
        Assert.That(client.GetService<GemmaModel>(), Is.SameAs(Demo));
        Assert.That(client.GetService<IChatClient>(), Is.SameAs(client));
        Assert.That(client.GetService(typeof(GemmaModel), serviceKey: "x"), Is.Null);
        Assert.That(client.GetService<string>(), Is.Null);
        using var named = new GemmaChatClient(Demo, new GemmaChatClientOptions { ModelId = "mine" });
        Assert.That(named.GetService<ChatClientMetadata>()!.DefaultModelId, Is.EqualTo("mine"));
    }

    [Test]
    public async Task DisposeWhileACallWaitsForAGeneratorFailsThatCallInsteadOfHangingIt()
    {
        var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 1 });
        await using (var running = client.GetStreamingResponseAsync([User("パッケージ")], Greedy(50)).GetAsyncEnumerator())
        {
            Assert.That(await running.MoveNextAsync(), Is.True); // holds the only generator
            Task<ChatResponse> waiting = client.GetResponseAsync([User("設定")], Greedy(4));
            // Dispose only once the second call is really waiting inside the pool (no sleep-and-hope).
            Assert.That(SpinWait.SpinUntil(() => client.Pool.Waiting == 1, TimeSpan.FromSeconds(30)), "the second call waits for the busy generator");
            Assert.That(waiting.IsCompleted, Is.False);
            client.Dispose();
            Assert.That(await running.MoveNextAsync(), Is.True, "a running call finishes");
            await running.DisposeAsync();
            Assert.That(async () => await waiting.WaitAsync(TimeSpan.FromSeconds(30)), Throws.InstanceOf<ObjectDisposedException>());
        }
    }

    [Test]
    public void InvalidClientOptionsAreGemmaExceptions()
    {
        Assert.Throws<GemmaException>(() => new GemmaChatClient(Demo, new GemmaChatClientOptions { MaxConcurrentGenerations = 0 }));
        Assert.Throws<GemmaException>(() => new GemmaChatClient(Demo, new GemmaChatClientOptions { ContextLength = 1 }));
    }

    [Test]
    public async Task DisposingAClientLeavesASharedModelUsable()
    {
        var client = new GemmaChatClient(Demo);
        await client.GetResponseAsync([User("a")], Greedy(2));
        client.Dispose();
        Assert.CatchAsync<ObjectDisposedException>(() => client.GetResponseAsync([User("a")], Greedy(2)));
        using var again = new GemmaChatClient(Demo);
        Assert.That((await again.GetResponseAsync([User("設定")], Greedy(8))).Text,
            Is.EqualTo(GeneratorGreedy(Encode(GemmaChatMessage.User("設定")), 8).Text));
    }
}
