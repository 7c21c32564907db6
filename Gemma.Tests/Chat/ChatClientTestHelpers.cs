using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Gemma.Tests.Generation;
using Microsoft.Extensions.AI;
using AIMessage = Microsoft.Extensions.AI.ChatMessage;
using AIRole = Microsoft.Extensions.AI.ChatRole;

namespace Gemma.Tests.Chat;

/// <summary>Shortcuts shared by the IChatClient tests; expected values come from the lower layers, not the client.</summary>
internal static class ChatClientTestHelpers
{
    public static GemmaModel Demo => DemoModel.Instance;

    public static AIMessage User(string text) => new(AIRole.User, text);
    public static AIMessage Assistant(string text) => new(AIRole.Assistant, text);
    public static AIMessage SystemMessage(string text) => new(AIRole.System, text);

    public static ChatOptions Greedy(int maxTokens) => new() { Temperature = 0f, MaxOutputTokens = maxTokens };

    public static GenerationStats Stats(ChatResponse r) => (GenerationStats)r.AdditionalProperties![GemmaChatClient.StatsKey]!;

    /// <summary>The prompt ids of a conversation, through the chat template directly.</summary>
    public static int[] Encode(params GemmaChatMessage[] messages) => ChatTemplate.EncodeToIds(Demo.RequireTokenizer(), messages);

    /// <summary>The greedy reply of a fresh <see cref="TextGenerator"/> (independent of the client and its pool).</summary>
    public static (string Text, GenerationStats Stats) GeneratorGreedy(int[] prompt, int maxTokens)
    {
        using var generator = new TextGenerator(Demo);
        string text = string.Concat(generator.Generate(prompt, SamplingOptions.Greedy with { MaxTokens = maxTokens }));
        return (text, generator.LastStats!);
    }

    public static async Task<(string Text, ChatResponseUpdate Last, int Updates)> Stream(
        IChatClient client, IEnumerable<AIMessage> messages, ChatOptions? options, CancellationToken ct = default)
    {
        var text = new System.Text.StringBuilder();
        ChatResponseUpdate? last = null;
        int n = 0;
        await foreach (ChatResponseUpdate u in client.GetStreamingResponseAsync(messages, options, ct))
        {
            text.Append(u.Text);
            last = u;
            n++;
        }
        return (text.ToString(), last!, n);
    }
}
