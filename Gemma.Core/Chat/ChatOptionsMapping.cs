using System.Text;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Microsoft.Extensions.AI;

namespace Gemma.Core.Chat;

/// <summary>
/// Translation between Microsoft.Extensions.AI's types and Gemma.NET's: <see cref="ChatOptions"/> →
/// <see cref="SamplingOptions"/>, <see cref="Microsoft.Extensions.AI.ChatMessage"/> → Gemma chat messages,
/// <see cref="FinishReason"/> → <see cref="ChatFinishReason"/>. The table is in <c>docs/api.md</c>.
/// </summary>
internal static class ChatOptionsMapping
{
    /// <summary>
    /// The sampling options for one call: each option <paramref name="options"/> sets replaces the one in
    /// <paramref name="defaults"/>. Temperature, TopP, TopK, MaxOutputTokens, StopSequences, Seed, FrequencyPenalty and
    /// PresencePenalty are mapped; Tools, ToolMode and ResponseFormat become a constraint in
    /// <see cref="ChatStructuredOutput"/>; Reasoning, ModelId and the rest are ignored.
    /// </summary>
    /// <exception cref="GemmaException">A value is out of range (e.g. negative temperature, top-p 0, a seed that
    /// does not fit in 32 bits, a negative token budget, an empty stop sequence).</exception>
    public static SamplingOptions ToSamplingOptions(ChatOptions? options, SamplingOptions defaults, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        SamplingOptions s = defaults;
        if (options is not null)
        {
            if (options.Seed is long seed && (seed < int.MinValue || seed > int.MaxValue))
                throw new GemmaException($"ChatOptions.Seed must fit in 32 bits ([{int.MinValue}, {int.MaxValue}]), got {seed}.");
            s = s with
            {
                Temperature = options.Temperature ?? s.Temperature,
                TopP = options.TopP ?? s.TopP,
                TopK = options.TopK ?? s.TopK,
                MaxTokens = options.MaxOutputTokens ?? s.MaxTokens,
                StopSequences = options.StopSequences is { Count: > 0 } stops ? [.. stops] : s.StopSequences,
                Seed = options.Seed is long sd ? (int)sd : s.Seed,
                FrequencyPenalty = options.FrequencyPenalty ?? s.FrequencyPenalty,
                PresencePenalty = options.PresencePenalty ?? s.PresencePenalty,
            };
        }
        s.Validate(vocabSize);
        return s;
    }

    /// <summary>
    /// The conversation in Gemma's terms. System messages at the start (and <see cref="ChatOptions.Instructions"/>,
    /// appended after them) become one system message, which <see cref="Tokenization.ChatTemplate"/> folds into the
    /// first user turn; consecutive messages of one role are joined with a blank line. Only text is supported:
    /// the <see cref="TextContent"/> parts of a message are concatenated, reasoning text is skipped, and any other
    /// content (images, data, tool calls or results) or the tool role is a <see cref="NotSupportedException"/>.
    /// The last message must be from the user (the model writes the next turn).
    /// </summary>
    /// <exception cref="NotSupportedException">Non-text content or a role other than system/user/assistant.</exception>
    /// <exception cref="GemmaException">No user message to answer, or the roles are out of order.</exception>
    public static List<GemmaChatMessage> ToGemmaMessages(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, string? instructions = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var result = new List<GemmaChatMessage>();
        var system = new StringBuilder();
        int index = 0;
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal); // call id -> function name
        foreach (Microsoft.Extensions.AI.ChatMessage m in messages)
        {
            if (m is null) throw new GemmaException($"Chat message {index} is null.");
            GemmaChatRole role = ToGemmaRole(m.Role, index);
            string text = TextOf(m, index, callNames);
            index++;
            if (role == GemmaChatRole.System && result.Count == 0)
            {
                AppendParagraph(system, text);
                continue;
            }
            if (result.Count > 0 && result[^1].Role == role)
                result[^1] = result[^1] with { Content = result[^1].Content + "\n\n" + text };
            else
                result.Add(new GemmaChatMessage(role, text));
        }
        if (!string.IsNullOrWhiteSpace(instructions)) AppendParagraph(system, instructions);
        if (result.Count == 0 || result[^1].Role != GemmaChatRole.User)
            throw new GemmaException("The conversation must end with a user message: the model answers the last user turn.");
        if (system.Length > 0) result.Insert(0, GemmaChatMessage.System(system.ToString()));
        return result;
    }

    /// <summary>
    /// EndOfTurn and StopSequence → <see cref="ChatFinishReason.Stop"/>; MaxTokens and ContextFull →
    /// <see cref="ChatFinishReason.Length"/>. Cancelled has no mapping: a cancelled call throws
    /// <see cref="OperationCanceledException"/> instead of returning.
    /// </summary>
    public static ChatFinishReason ToChatFinishReason(FinishReason reason) => reason switch
    {
        FinishReason.EndOfTurn or FinishReason.StopSequence => ChatFinishReason.Stop,
        FinishReason.MaxTokens or FinishReason.ContextFull => ChatFinishReason.Length,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "A cancelled generation has no finish reason: it throws."),
    };

    private static GemmaChatRole ToGemmaRole(Microsoft.Extensions.AI.ChatRole role, int index)
    {
        if (role == Microsoft.Extensions.AI.ChatRole.User) return GemmaChatRole.User;
        if (role == Microsoft.Extensions.AI.ChatRole.Assistant) return GemmaChatRole.Assistant;
        if (role == Microsoft.Extensions.AI.ChatRole.System) return GemmaChatRole.System;
        if (role == Microsoft.Extensions.AI.ChatRole.Tool) return GemmaChatRole.User; // Gemma has no tool role: results are user text
        throw new NotSupportedException($"Chat message {index} has the role '{role}': Gemma.NET supports only system, user, assistant and tool.");
    }

    private static string TextOf(Microsoft.Extensions.AI.ChatMessage m, int index, Dictionary<string, string> callNames)
    {
        if (m.Contents.Count == 1 && m.Contents[0] is TextContent only) return only.Text ?? "";
        var text = new StringBuilder();
        List<FunctionCallContent> calls = [.. m.Contents.OfType<FunctionCallContent>()];
        foreach (AIContent content in m.Contents)
        {
            switch (content)
            {
                case TextContent t: text.Append(t.Text); break;
                case TextReasoningContent: break; // the model's own reasoning is not shown to it again
                case FunctionCallContent call: // tool calling (ChatStructuredOutput): written back as the model wrote it
                    callNames[call.CallId] = call.Name;
                    if (calls.Count > 1 && call != calls[0]) break; // several calls: one array, at the first
                    if (text.Length > 0) text.Append('\n');
                    text.Append(calls.Count > 1 ? ChatStructuredOutput.RenderCalls(calls) : ChatStructuredOutput.RenderCall(call));
                    break;
                case FunctionResultContent result:
                    if (text.Length > 0) text.Append('\n');
                    text.Append(ChatStructuredOutput.RenderResult(result, callNames.GetValueOrDefault(result.CallId)));
                    break;
                default:
                    throw new NotSupportedException(
                        $"Chat message {index} contains {content.GetType().Name}: Gemma.NET is text-only (no images, data or tool calls).");
            }
        }
        return text.ToString();
    }

    private static void AppendParagraph(StringBuilder sb, string text)
    {
        if (sb.Length > 0) sb.Append("\n\n");
        sb.Append(text.Trim());
    }
}
