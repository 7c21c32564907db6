using System.Collections.Concurrent;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gemma.Core.Constraints;
using Microsoft.Extensions.AI;

namespace Gemma.Core.Chat;

/// <summary>
/// <see cref="ChatOptions.ResponseFormat"/> and <see cref="ChatOptions.Tools"/> for Gemma, which has no native tool
/// format: what to add to the prompt, the <see cref="OutputConstraint"/> that makes the reply valid, and how to read
/// the reply back (text or a <see cref="FunctionCallContent"/>). See <c>docs/structured-output.md</c>.
/// </summary>
/// <remarks>
/// A tool call is the JSON object <c>{"name": …, "arguments": {…}}</c>, its arguments valid under that tool's
/// parameter schema; with <see cref="ChatOptions.AllowMultipleToolCalls"/> = true the reply is instead an array of 1 to
/// <see cref="MaxCalls"/> such calls (parallel tool calls). <see cref="ChatToolMode.Auto"/> (the default with tools)
/// allows calls or free text not starting with <c>{</c> (<c>[</c> for an array); <see cref="ChatToolMode.RequireAny"/> only calls; a required function name only calls to it;
/// <see cref="ChatToolMode.None"/> neither describes nor allows calls.
/// </remarks>
internal static class ChatStructuredOutput
{
    /// <summary>
    /// JSON written into the prompt (tool descriptions, calls and results in the history) keeps non-ASCII text as
    /// itself: the default encoder writes Japanese as <c>\uXXXX</c> escapes, which the model reads far worse.
    /// </summary>
    private static readonly JsonSerializerOptions PromptJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>What one call needs: the constraint (or null), prompt instructions (or null), and whether to parse calls.</summary>
    internal sealed record Plan(OutputConstraint? Constraint, string? Instructions, bool ParsesCalls);

    private static readonly Plan None = new(null, null, false);

    /// <summary>Most calls in one reply when <see cref="ChatOptions.AllowMultipleToolCalls"/> is true.</summary>
    public const int MaxCalls = 8;

    /// <summary>Compiled constraints by their source, so repeated calls with one schema reuse its learned token masks.</summary>
    internal sealed class Cache
    {
        private const int Capacity = 64;
        private readonly ConcurrentDictionary<string, OutputConstraint> _items = new(StringComparer.Ordinal);

        public OutputConstraint Get(string key, Func<OutputConstraint> create)
        {
            if (_items.TryGetValue(key, out OutputConstraint? c)) return c;
            if (_items.Count >= Capacity) _items.Clear();
            return _items.GetOrAdd(key, _ => create());
        }
    }

    public static Plan Prepare(ChatOptions? options, Cache cache)
    {
        if (options is null) return None;
        AIFunctionDeclaration[] tools = options.ToolMode is NoneChatToolMode ? [] : [.. (options.Tools ?? []).OfType<AIFunctionDeclaration>()];
        if (options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } required })
        {
            tools = [.. tools.Where(t => t.Name == required)];
            if (tools.Length == 0) throw new GemmaException($"ChatOptions.ToolMode requires the function '{required}', which is not in ChatOptions.Tools.");
        }
        else if (options.ToolMode is RequiredChatToolMode && tools.Length == 0)
        {
            throw new GemmaException("ChatOptions.ToolMode requires a function call, but ChatOptions.Tools has no functions.");
        }

        JsonElement? format = options.ResponseFormat switch
        {
            ChatResponseFormatJson { Schema: { } schema } => schema,
            ChatResponseFormatJson => JsonDocument.Parse("true").RootElement,
            _ => null,
        };

        if (tools.Length == 0)
        {
            if (format is not { } f) return None;
            string text = f.GetRawText();
            OutputConstraint c = cache.Get("format:" + text, () => f.ValueKind == JsonValueKind.True ? OutputConstraint.AnyJson() : OutputConstraint.FromJsonSchema(f));
            string instructions = f.ValueKind == JsonValueKind.True
                ? "Reply with JSON only."
                : "Reply with JSON only, a value valid under this JSON schema:\n" + text;
            return new Plan(c, instructions, false);
        }

        bool mustCall = options.ToolMode is RequiredChatToolMode;
        bool several = options.AllowMultipleToolCalls == true;
        var alternatives = new JsonArray();
        var described = new JsonArray();
        foreach (AIFunctionDeclaration tool in tools)
        {
            JsonNode parameters = JsonNode.Parse(tool.JsonSchema.GetRawText()) ?? new JsonObject();
            if (parameters is JsonObject o)
            {
                // Annotations of the generated parameter schema are not constraints; keep the prompt short.
                o.Remove("$schema");
                o.Remove("title");
            }
            alternatives.Add((JsonNode)new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { ["name"] = new JsonObject { ["const"] = tool.Name }, ["arguments"] = parameters.DeepClone() },
                ["required"] = new JsonArray("name", "arguments"),
                ["additionalProperties"] = false,
            });
            described.Add((JsonNode)new JsonObject { ["name"] = tool.Name, ["description"] = tool.Description, ["parameters"] = parameters });
        }
        JsonObject callSchema = several
            ? new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["anyOf"] = alternatives }, ["minItems"] = 1, ["maxItems"] = MaxCalls }
            : new JsonObject { ["anyOf"] = alternatives };
        string key = (mustCall ? "call:" : "call-or-text:") + callSchema.ToJsonString();
        OutputConstraint constraint = cache.Get(key, () =>
        {
            using JsonDocument doc = JsonDocument.Parse(callSchema.ToJsonString(), new JsonDocumentOptions { MaxDepth = 4096 });
            return OutputConstraint.JsonOrText(doc.RootElement, allowText: !mustCall, several ? '[' : '{', several ? "tool calls" : "tool call");
        });
        var sb = new StringBuilder();
        sb.Append("You can call these functions:\n").Append(described.ToJsonString(PromptJson)).Append('\n');
        sb.Append(several
            ? $"To call functions, reply with only a JSON array of 1 to {MaxCalls} calls [{{\"name\": function name, \"arguments\": {{arguments}}}}, …]; list every call needed now."
            : "To call a function, reply with only a JSON object {\"name\": function name, \"arguments\": {arguments}}.");
        sb.Append(mustCall ? " You must call a function now." : " If no function is needed, reply normally in text.");
        sb.Append(" A function's result comes back in the next user message.");
        return new Plan(constraint, sb.ToString(), true);
    }

    /// <summary>The reply as content: a <see cref="FunctionCallContent"/> if it is one call, else text (a reply with
    /// several calls is text here: use <see cref="ParseReplyContents"/>).</summary>
    public static AIContent ParseReply(string text) =>
        ParseReplyContents(text) is [FunctionCallContent call] ? call : new TextContent(text);

    /// <summary>
    /// The reply as contents: the <see cref="FunctionCallContent"/>s if it is a call <c>{"name":…,"arguments":…}</c>
    /// or an array of calls (with <see cref="ChatOptions.AllowMultipleToolCalls"/>), each with a fresh call id; else
    /// one <see cref="TextContent"/> (also for an unfinished call when the token budget ran out: finish reason Length).
    /// </summary>
    public static IReadOnlyList<AIContent> ParseReplyContents(string text)
    {
        if (text.StartsWith('{') || text.StartsWith('['))
        {
            try
            {
                using JsonDocument doc = JsonDocument.Parse(text);
                JsonElement root = doc.RootElement;
                var calls = new List<AIContent>();
                if (root.ValueKind == JsonValueKind.Array)
                {
                    foreach (JsonElement item in root.EnumerateArray())
                    {
                        if (ToCall(item) is not { } call) return [new TextContent(text)];
                        calls.Add(call);
                    }
                }
                else if (ToCall(root) is { } call)
                {
                    calls.Add(call);
                }
                if (calls.Count > 0) return calls;
            }
            catch (JsonException)
            {
                // Unfinished (the token budget ran out): returned as text, with finish reason Length.
            }
        }
        return [new TextContent(text)];
    }

    private static FunctionCallContent? ToCall(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("arguments", out JsonElement args) || args.ValueKind != JsonValueKind.Object)
            return null;
        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (JsonProperty p in args.EnumerateObject()) arguments[p.Name] = p.Value.Clone();
        return new FunctionCallContent("call_" + Guid.NewGuid().ToString("N")[..12], name.GetString()!, arguments);
    }

    /// <summary>Several calls of one reply in the history, written back as the model writes them (an array).</summary>
    public static string RenderCalls(IEnumerable<FunctionCallContent> calls) =>
        new JsonArray(calls.Select(c => JsonNode.Parse(RenderCall(c))).ToArray()).ToJsonString(PromptJson);

    /// <summary>A call in the history, written back the way the model writes calls.</summary>
    public static string RenderCall(FunctionCallContent call)
    {
        var args = new JsonObject();
        if (call.Arguments is not null)
            foreach (KeyValuePair<string, object?> a in call.Arguments) args[a.Key] = ToNode(a.Value);
        return new JsonObject { ["name"] = call.Name, ["arguments"] = args }.ToJsonString(PromptJson);
    }

    /// <summary>A function result in the history, as the model reads it (in a user turn).</summary>
    public static string RenderResult(FunctionResultContent result, string? name)
    {
        string value = result.Exception is { } e ? "error: " + e.Message : ToNode(result.Result)?.ToJsonString(PromptJson) ?? "null";
        return $"Result of function {name ?? result.CallId}: {value}";
    }

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        JsonNode node => node.DeepClone(),
        JsonElement element => JsonNode.Parse(element.GetRawText()),
        string s => JsonValue.Create(s),
        _ => JsonSerializer.SerializeToNode(value, AIJsonUtilities.DefaultOptions.GetTypeInfo(value.GetType())),
    };
}
