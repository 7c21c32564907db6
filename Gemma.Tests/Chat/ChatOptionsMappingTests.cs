using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using static Gemma.Tests.Chat.ChatClientTestHelpers;

namespace Gemma.Tests.Chat;

[Category("Chat")]
public class ChatOptionsMappingTests
{
    private const int Vocab = 1000;

    [Test]
    public void EverySupportedOptionIsMappedAndUnsetOnesKeepTheDefaults()
    {
        var defaults = new SamplingOptions { MinP = 0.1f, RepetitionPenalty = 1.3f };
        var o = new ChatOptions
        {
            Temperature = 0.5f, TopP = 0.9f, TopK = 7, MaxOutputTokens = 33, StopSequences = ["。"], Seed = -12,
            FrequencyPenalty = 0.25f, PresencePenalty = 0.75f,
            Tools = [], ResponseFormat = ChatResponseFormat.Json, ModelId = "ignored",
        };
        SamplingOptions s = ChatOptionsMapping.ToSamplingOptions(o, defaults, Vocab);
        Assert.That((s.Temperature, s.TopP, s.TopK, s.MaxTokens, s.Seed), Is.EqualTo((0.5f, 0.9f, 7, 33, (int?)-12)));
        Assert.That(s.StopSequences, Is.EqualTo(new[] { "。" }));
        Assert.That((s.FrequencyPenalty, s.PresencePenalty), Is.EqualTo((0.25f, 0.75f)));
        Assert.That((s.MinP, s.RepetitionPenalty), Is.EqualTo((0.1f, 1.3f)), "not in ChatOptions: from the defaults");

        SamplingOptions none = ChatOptionsMapping.ToSamplingOptions(null, defaults, Vocab);
        Assert.That(none, Is.EqualTo(defaults));
        SamplingOptions empty = ChatOptionsMapping.ToSamplingOptions(new ChatOptions(), defaults, Vocab);
        Assert.That(empty, Is.EqualTo(defaults));
    }

    [Test]
    public void InvalidOptionValuesAreGemmaExceptionsNamingTheOption()
    {
        var d = new SamplingOptions();
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { Temperature = -1 }, d, Vocab))!.Message, Does.Contain("Temperature"));
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { TopP = 0 }, d, Vocab))!.Message, Does.Contain("TopP"));
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { TopK = -3 }, d, Vocab))!.Message, Does.Contain("TopK"));
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { MaxOutputTokens = -1 }, d, Vocab))!.Message, Does.Contain("MaxTokens"));
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { Seed = (long)int.MaxValue + 1 }, d, Vocab))!.Message, Does.Contain("Seed"));
        Assert.That(Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToSamplingOptions(new ChatOptions { StopSequences = [""] }, d, Vocab))!.Message, Does.Contain("StopSequences"));
        Assert.That(ChatOptionsMapping.ToSamplingOptions(new ChatOptions { Seed = int.MinValue }, d, Vocab).Seed, Is.EqualTo(int.MinValue));
    }

    [Test]
    public async Task TheClientRejectsInvalidOptionsAndStaysUsable()
    {
        using var client = new GemmaChatClient(Demo);
        Assert.ThrowsAsync<GemmaException>(() => client.GetResponseAsync([User("a")], new ChatOptions { Temperature = -0.5f }));
        Assert.ThrowsAsync<GemmaException>(() => client.GetResponseAsync([User("a")], new ChatOptions { TopP = 0f }));
        Assert.ThrowsAsync<GemmaException>(() => client.GetResponseAsync([User("a")], new ChatOptions { Seed = long.MinValue }));
        Assert.That((await client.GetResponseAsync([User("a")], Greedy(3))).Usage!.OutputTokenCount, Is.GreaterThan(0));
    }

    [Test]
    public void MessagesMapToGemmaTurnsWithSystemTextFoldedAndSameRoleRunsJoined()
    {
        var m = ChatOptionsMapping.ToGemmaMessages(
            [SystemMessage("規則1"), SystemMessage("規則2"), User("質問"), new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, [new TextContent("続き"), new TextContent("です")]),
             Assistant("答え"), User("次")],
            instructions: "追加");
        Assert.That(m.Select(x => (x.Role, x.Content)), Is.EqualTo(new[]
        {
            (GemmaChatRole.System, "規則1\n\n規則2\n\n追加"), (GemmaChatRole.User, "質問\n\n続きです"), (GemmaChatRole.Assistant, "答え"), (GemmaChatRole.User, "次"),
        }));
    }

    [Test]
    public void UnsupportedContentAndRolesAreNotSupportedExceptions()
    {
        var image = new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, [new TextContent("これは?"), new DataContent(new byte[] { 1, 2 }, "image/png")]);
        Assert.That(Assert.Throws<NotSupportedException>(() => ChatOptionsMapping.ToGemmaMessages([image]))!.Message, Does.Contain("DataContent"));
        var tool = new Microsoft.Extensions.AI.ChatMessage(ChatRole.Tool, "42");
        Assert.Throws<NotSupportedException>(() => ChatOptionsMapping.ToGemmaMessages([User("a"), Assistant("b"), tool]));
        var call = new Microsoft.Extensions.AI.ChatMessage(ChatRole.Assistant, [new FunctionCallContent("1", "f")]);
        Assert.Throws<NotSupportedException>(() => ChatOptionsMapping.ToGemmaMessages([User("a"), call, User("c")]));
    }

    [Test]
    public void AConversationThatDoesNotEndWithTheUserIsAGemmaException()
    {
        Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToGemmaMessages([User("a"), Assistant("b")]));
        Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToGemmaMessages([]));
        Assert.Throws<GemmaException>(() => ChatOptionsMapping.ToGemmaMessages([SystemMessage("s")]));
    }

    [Test]
    public void FinishReasonsMapToStopAndLengthAndCancelledHasNone()
    {
        Assert.That(ChatOptionsMapping.ToChatFinishReason(FinishReason.EndOfTurn), Is.EqualTo(ChatFinishReason.Stop));
        Assert.That(ChatOptionsMapping.ToChatFinishReason(FinishReason.StopSequence), Is.EqualTo(ChatFinishReason.Stop));
        Assert.That(ChatOptionsMapping.ToChatFinishReason(FinishReason.MaxTokens), Is.EqualTo(ChatFinishReason.Length));
        Assert.That(ChatOptionsMapping.ToChatFinishReason(FinishReason.ContextFull), Is.EqualTo(ChatFinishReason.Length));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChatOptionsMapping.ToChatFinishReason(FinishReason.Cancelled));
    }

    [Test]
    public async Task AConversationLongerThanTheContextIsAClearError()
    {
        using var client = new GemmaChatClient(Demo, new GemmaChatClientOptions { ContextLength = 32 });
        string huge = string.Concat(Enumerable.Repeat("パッケージ管理 ", 40));
        var e = Assert.ThrowsAsync<ContextLengthExceededException>(() => client.GetResponseAsync([User(huge)], Greedy(4)))!;
        Assert.That(e.Message, Does.Contain("context length is 32"));
        Assert.That((await client.GetResponseAsync([User("a")], Greedy(2))).Usage!.OutputTokenCount, Is.GreaterThan(0));
    }
}
