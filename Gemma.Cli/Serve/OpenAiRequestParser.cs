using System.Text.Json;
using System.Text.RegularExpressions;
using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Constraints;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;

namespace Gemma.Cli.Serve;

/// <summary>
/// A validated generation request: prompt ids, sampling, and how to answer. <paramref name="ParsesCalls"/>: tools are
/// offered, so the reply is a tool call (JSON) or text, read back with <see cref="ChatStructuredOutput.ParseReply"/>.
/// </summary>
internal sealed record ParsedRequest(int[] Prompt, SamplingOptions Options, bool Stream, bool IncludeUsage, bool ParsesCalls = false, bool SeveralCalls = false);

/// <summary>
/// Reads OpenAI request bodies (<c>/v1/chat/completions</c>, <c>/v1/completions</c>) into a <see cref="ParsedRequest"/>.
/// Every field is checked for type and range; a problem is an <see cref="ApiException"/> (400) naming the field.
/// Unknown fields are ignored, as OpenAI-compatible servers do, and reported (<see cref="IgnoredFields"/>).
/// Absent sampling fields take <see cref="SamplingOptions"/>' defaults (llama.cpp's), not OpenAI's temperature 1.
/// </summary>
/// <remarks>
/// Chat messages and tools become Microsoft.Extensions.AI messages and <see cref="ChatOptions"/>, and then take the
/// library's own path (<see cref="ChatOptionsMapping.ToGemmaMessages"/>, <see cref="ChatStructuredOutput.Prepare"/>):
/// the server renders a conversation — tool descriptions, calls and results included — exactly as
/// <see cref="GemmaChatClient"/> does, and constrains a tool reply the same way.
/// </remarks>
internal sealed partial class OpenAiRequestParser(GemmaTokenizer tokenizer, int vocabSize, int contextLength)
{
    private const int MaxStops = 16;
    private const int MaxTools = 128;  // OpenAI's limit

    /// <summary>OpenAI's rule for function names.</summary>
    private static readonly Regex FunctionName = new("^[A-Za-z0-9_-]{1,64}$", RegexOptions.CultureInvariant);

    /// <summary>Tool-call constraints by their schema (they keep the token masks they learn).</summary>
    private readonly ChatStructuredOutput.Cache _toolConstraints = new();

    public ParsedRequest ParseChat(JsonElement root)
    {
        RequireObject(root);
        if (!root.TryGetProperty("messages", out JsonElement messages) || messages.ValueKind != JsonValueKind.Array)
            throw ApiException.BadParam("messages", "'messages' is required and must be an array of messages.");
        if (messages.GetArrayLength() == 0) throw ApiException.BadParam("messages", "'messages' must not be empty.");
        var list = new List<AIChatMessage>();
        var callIds = new HashSet<string>(StringComparer.Ordinal);
        int index = 0;
        bool started = false;
        foreach (JsonElement m in messages.EnumerateArray())
        {
            AIChatMessage message = ReadMessage(m, $"messages[{index}]", callIds);
            // Gemma has one system part, folded into the first user turn. A system (or developer) message later in
            // the conversation joins the next user turn instead, as llama.cpp's Gemma template does.
            if (message.Role == AIChatRole.System && started) message = new AIChatMessage(AIChatRole.User, message.Contents);
            started |= message.Role != AIChatRole.System;
            list.Add(message);
            index++;
        }
        OpenWithUserTurn(list);
        CheckUnsupported(root, chat: true);
        ChatStructuredOutput.Plan tools = ReadTools(root);
        int[] prompt;
        try
        {
            prompt = ChatTemplate.EncodeToIds(tokenizer, ChatOptionsMapping.ToGemmaMessages(list, tools.Instructions));
        }
        catch (GemmaException e)
        {
            throw ApiException.BadParam("messages", e.Message);
        }
        int? max = OptionalInt(root, "max_completion_tokens", 1, int.MaxValue) ?? OptionalInt(root, "max_tokens", 1, int.MaxValue);
        return Finish(root, prompt, max, tools);
    }

    public ParsedRequest ParseCompletion(JsonElement root)
    {
        RequireObject(root);
        if (!root.TryGetProperty("prompt", out JsonElement p)) throw ApiException.BadParam("prompt", "'prompt' is required.");
        int[] prompt = ReadPrompt(p);
        CheckUnsupported(root, chat: false);
        if (root.TryGetProperty("echo", out JsonElement echo) && echo.ValueKind == JsonValueKind.True)
            throw ApiException.BadParam("echo", "'echo' is not supported.");
        if (root.TryGetProperty("suffix", out JsonElement suffix) && suffix.ValueKind != JsonValueKind.Null)
            throw ApiException.BadParam("suffix", "'suffix' is not supported.");
        if (OptionalInt(root, "best_of", 1, int.MaxValue) is > 1) throw ApiException.BadParam("best_of", "'best_of' > 1 is not supported.");
        // The legacy endpoint defaults to 16 tokens in OpenAI's API.
        int max = OptionalInt(root, "max_tokens", 1, int.MaxValue) ?? 16;
        return Finish(root, prompt, max, null);
    }

    /// <summary>A completion prompt: text, one-element array of text, or token ids (flat or nested once).</summary>
    private int[] ReadPrompt(JsonElement p)
    {
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                return tokenizer.EncodeToIds(p.GetString()!, addBos: true);
            case JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind is JsonValueKind.String or JsonValueKind.Array:
                return ReadPrompt(p[0]);
            case JsonValueKind.Array when p.GetArrayLength() > 0 && p[0].ValueKind == JsonValueKind.Number:
                var ids = new int[p.GetArrayLength()];
                int i = 0;
                foreach (JsonElement e in p.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int id) || (uint)id >= (uint)vocabSize)
                        throw ApiException.BadParam("prompt", $"prompt[{i}] is not a token id in [0, {vocabSize}).");
                    ids[i++] = id;
                }
                return ids;
            case JsonValueKind.Array when p.GetArrayLength() > 1:
                throw ApiException.BadParam("prompt", "Only one prompt per request is supported.");
            default:
                throw ApiException.BadParam("prompt", "'prompt' must be a non-empty string, an array with one string, or an array of token ids.");
        }
    }

    /// <summary>
    /// One message as Microsoft.Extensions.AI sees it: text; an assistant turn's <c>tool_calls</c> as
    /// <see cref="FunctionCallContent"/>s; a <c>tool</c> message as the <see cref="FunctionResultContent"/> of the call
    /// it names (its content, when it is JSON, as that JSON value, else as a string).
    /// </summary>
    private static AIChatMessage ReadMessage(JsonElement m, string where, HashSet<string> callIds)
    {
        if (m.ValueKind != JsonValueKind.Object) throw ApiException.BadParam(where, $"{where} must be an object with 'role' and 'content'.");
        string role = m.TryGetProperty("role", out JsonElement r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
            : throw ApiException.BadParam($"{where}.role", $"{where}.role must be a string.");
        bool hasContent = m.TryGetProperty("content", out JsonElement content) && content.ValueKind != JsonValueKind.Null;
        switch (role)
        {
            case "system" or "developer" or "user":
                if (!hasContent) throw ApiException.BadParam($"{where}.content", $"{where}.content is required.");
                return new AIChatMessage(role == "user" ? AIChatRole.User : AIChatRole.System, ReadContent(content, $"{where}.content"));
            case "assistant":
                var contents = new List<AIContent>();
                if (hasContent) contents.Add(new TextContent(ReadContent(content, $"{where}.content", assistant: true)));
                if (m.TryGetProperty("tool_calls", out JsonElement calls) && calls.ValueKind != JsonValueKind.Null)
                    contents.AddRange(ReadToolCalls(calls, $"{where}.tool_calls", callIds));
                if (contents.Count == 0) throw ApiException.BadParam($"{where}.content", $"{where} needs 'content' or 'tool_calls'.");
                return new AIChatMessage(AIChatRole.Assistant, contents);
            case "tool":
                string id = m.TryGetProperty("tool_call_id", out JsonElement tid) && tid.ValueKind == JsonValueKind.String ? tid.GetString()!
                    : throw ApiException.BadParam($"{where}.tool_call_id", $"{where}.tool_call_id must be a string (the id of the call this answers).");
                if (!callIds.Contains(id))
                    throw ApiException.BadParam($"{where}.tool_call_id", $"{where}.tool_call_id '{id}' does not name a tool call of an earlier assistant message.");
                if (!hasContent) throw ApiException.BadParam($"{where}.content", $"{where}.content is required.");
                return new AIChatMessage(AIChatRole.Tool, [new FunctionResultContent(id, ResultValue(ReadContent(content, $"{where}.content")))]);
            case "function":
                throw ApiException.BadParam($"{where}.role", "The deprecated 'function' role is not supported: send tool calls and 'tool' messages.");
            default:
                throw ApiException.BadParam($"{where}.role", $"Unknown role '{role}': expected system, developer, user, assistant or tool.");
        }
    }

    /// <summary>
    /// Gemma's template starts with a user turn. A conversation that opens with an assistant message (a chat UI's
    /// greeting) gets one before it: the leading system messages as the user's words when there are any, else an
    /// empty user turn.
    /// </summary>
    private static void OpenWithUserTurn(List<AIChatMessage> list)
    {
        int first = list.FindIndex(m => m.Role != AIChatRole.System);
        if (first < 0 || list[first].Role != AIChatRole.Assistant) return;
        if (first == 0) list.Insert(0, new AIChatMessage(AIChatRole.User, ""));
        for (int i = 0; i < first; i++) list[i] = new AIChatMessage(AIChatRole.User, list[i].Contents);
    }

    /// <summary>A tool message's content: the JSON value it holds (rendered as JSON), else the text.</summary>
    private static object ResultValue(string text)
    {
        string t = text.Trim();
        if (t.Length > 0 && t[0] is '{' or '[' or '"')
        {
            try
            {
                using JsonDocument doc = JsonDocument.Parse(t);
                return doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                // Not JSON after all: plain text.
            }
        }
        return text;
    }

    /// <summary>An assistant message's <c>tool_calls</c>: <c>[{id, type: "function", function: {name, arguments}}]</c>.</summary>
    private static List<AIContent> ReadToolCalls(JsonElement calls, string where, HashSet<string> callIds)
    {
        if (calls.ValueKind != JsonValueKind.Array) throw ApiException.BadParam(where, $"{where} must be an array.");
        var result = new List<AIContent>();
        int i = 0;
        foreach (JsonElement call in calls.EnumerateArray())
        {
            string at = $"{where}[{i++}]";
            if (call.ValueKind != JsonValueKind.Object) throw ApiException.BadParam(at, $"{at} must be an object.");
            string id = call.TryGetProperty("id", out JsonElement idE) && idE.ValueKind == JsonValueKind.String && idE.GetString()!.Length > 0 ? idE.GetString()!
                : throw ApiException.BadParam($"{at}.id", $"{at}.id must be a non-empty string.");
            // Lenient where the meaning is plain: a missing type is "function" (the only kind), and arguments may come
            // as the JSON object itself (Ollama's form, which some clients send to every server) instead of its text.
            if (call.TryGetProperty("type", out JsonElement type) && type.ValueKind != JsonValueKind.Null
                && (type.ValueKind != JsonValueKind.String || type.GetString() != "function"))
                throw ApiException.BadParam($"{at}.type", $"{at}.type must be \"function\".");
            if (!call.TryGetProperty("function", out JsonElement f) || f.ValueKind != JsonValueKind.Object)
                throw ApiException.BadParam($"{at}.function", $"{at}.function must be an object with 'name' and 'arguments'.");
            string name = f.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
                : throw ApiException.BadParam($"{at}.function.name", $"{at}.function.name must be a string.");
            if (!f.TryGetProperty("arguments", out JsonElement a) || a.ValueKind is not (JsonValueKind.String or JsonValueKind.Object))
                throw ApiException.BadParam($"{at}.function.arguments", $"{at}.function.arguments must be a string (a JSON object).");
            string text = a.ValueKind == JsonValueKind.Object ? a.GetRawText() : a.GetString()!;
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            try
            {
                using JsonDocument doc = JsonDocument.Parse(text.Length == 0 ? "{}" : text);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
                foreach (JsonProperty p in doc.RootElement.EnumerateObject()) arguments[p.Name] = p.Value.Clone();
            }
            catch (JsonException e)
            {
                throw ApiException.BadParam($"{at}.function.arguments", $"{at}.function.arguments must hold a JSON object: {e.Message}");
            }
            callIds.Add(id);
            result.Add(new FunctionCallContent(id, name, arguments));
        }
        return result;
    }

    /// <summary>
    /// <c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c> as <see cref="ChatOptions"/>, then the
    /// library's plan: the prompt instructions describing the tools and the constraint that makes the reply a valid
    /// call (or text, with <c>auto</c>). Every tool's <c>parameters</c> schema is enforced whatever <c>strict</c> says;
    /// one the constraint compiler cannot enforce is a 400 naming that tool, never silently ignored.
    /// </summary>
    private ChatStructuredOutput.Plan ReadTools(JsonElement root)
    {
        var declarations = new List<AITool>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var schemas = new List<JsonElement>();
        if (root.TryGetProperty("tools", out JsonElement tools) && tools.ValueKind != JsonValueKind.Null)
        {
            if (tools.ValueKind != JsonValueKind.Array) throw ApiException.BadParam("tools", "'tools' must be an array.");
            if (tools.GetArrayLength() > MaxTools) throw ApiException.BadParam("tools", $"At most {MaxTools} tools.");
            int i = 0;
            foreach (JsonElement tool in tools.EnumerateArray())
            {
                string at = $"tools[{i++}]";
                if (tool.ValueKind != JsonValueKind.Object) throw ApiException.BadParam(at, $"{at} must be an object.");
                if (!tool.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
                    throw ApiException.BadParam($"{at}.type", $"{at}.type must be \"function\" (the only tool type served).");
                if (!tool.TryGetProperty("function", out JsonElement f) || f.ValueKind != JsonValueKind.Object)
                    throw ApiException.BadParam($"{at}.function", $"{at}.function must be an object with a 'name'.");
                string name = f.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
                if (!FunctionName.IsMatch(name))
                    throw ApiException.BadParam($"{at}.function.name", $"{at}.function.name must be 1-64 letters, digits, '_' or '-', got '{name}'.");
                if (!names.Add(name)) throw ApiException.BadParam($"{at}.function.name", $"Duplicate tool name '{name}'.");
                string? description = null;
                if (f.TryGetProperty("description", out JsonElement d) && d.ValueKind != JsonValueKind.Null)
                    description = d.ValueKind == JsonValueKind.String ? d.GetString() : throw ApiException.BadParam($"{at}.function.description", $"{at}.function.description must be a string.");
                JsonElement parameters;
                if (f.TryGetProperty("parameters", out JsonElement p) && p.ValueKind != JsonValueKind.Null)
                {
                    if (p.ValueKind != JsonValueKind.Object) throw ApiException.BadParam($"{at}.function.parameters", $"{at}.function.parameters must be a JSON Schema object.");
                    parameters = p.Clone();
                }
                else
                {
                    parameters = NoParameters;  // OpenAI: a function without parameters takes an empty object
                }
                if (f.TryGetProperty("strict", out JsonElement strict) && strict.ValueKind is not (JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False))
                    throw ApiException.BadParam($"{at}.function.strict", $"{at}.function.strict must be true or false.");
                schemas.Add(parameters);
                declarations.Add(AIFunctionFactory.CreateDeclaration(name, description, parameters));
            }
        }

        ChatToolMode? mode = null;  // auto when there are tools
        if (root.TryGetProperty("tool_choice", out JsonElement choice) && choice.ValueKind != JsonValueKind.Null)
        {
            if (choice.ValueKind == JsonValueKind.String)
            {
                mode = choice.GetString() switch
                {
                    "none" => ChatToolMode.None,
                    "auto" => ChatToolMode.Auto,
                    "required" => ChatToolMode.RequireAny,
                    _ => throw ApiException.BadParam("tool_choice", ToolChoiceForms),
                };
            }
            else if (choice.ValueKind == JsonValueKind.Object
                && choice.TryGetProperty("type", out JsonElement ct) && ct.ValueKind == JsonValueKind.String && ct.GetString() == "function"
                && choice.TryGetProperty("function", out JsonElement cf) && cf.ValueKind == JsonValueKind.Object
                && cf.TryGetProperty("name", out JsonElement cn) && cn.ValueKind == JsonValueKind.String)
            {
                string name = cn.GetString()!;
                if (!names.Contains(name)) throw ApiException.BadParam("tool_choice", $"'tool_choice' names the function '{name}', which is not in 'tools'.");
                mode = ChatToolMode.RequireSpecific(name);
            }
            else
            {
                throw ApiException.BadParam("tool_choice", ToolChoiceForms);
            }
            if (mode is RequiredChatToolMode && declarations.Count == 0)
                throw ApiException.BadParam("tool_choice", "'tool_choice' requires a tool call, but 'tools' is empty.");
        }
        bool? parallel = OptionalBool(root, "parallel_tool_calls");
        if (declarations.Count == 0 || mode is NoneChatToolMode) return NoTools;

        var options = new ChatOptions { Tools = declarations, ToolMode = mode, AllowMultipleToolCalls = parallel };
        try
        {
            return ChatStructuredOutput.Prepare(options, _toolConstraints);
        }
        catch (GemmaException e)
        {
            // Name the tool whose parameter schema cannot be enforced (compiled alone, it fails the same way).
            for (int i = 0; i < schemas.Count; i++)
            {
                try
                {
                    OutputConstraint.FromJsonSchema(schemas[i]);
                }
                catch (GemmaException alone)
                {
                    throw ApiException.BadParam($"tools[{i}].function.parameters", $"tools[{i}].function.parameters: {alone.Message}");
                }
            }
            throw ApiException.BadParam("tools", e.Message);
        }
    }

    private const string ToolChoiceForms = "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}.";
    private static readonly ChatStructuredOutput.Plan NoTools = new(null, null, false);
    private static readonly JsonElement NoParameters = JsonDocument.Parse("{\"type\":\"object\",\"properties\":{}}").RootElement.Clone();

    /// <summary>
    /// Message content: a string, or an array of <c>{"type":"text","text":…}</c> parts (concatenated); an assistant
    /// message's <c>{"type":"refusal","refusal":…}</c> parts count as its text (what it said).
    /// </summary>
    private static string ReadContent(JsonElement content, string where, bool assistant = false)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw ApiException.BadParam(where, $"{where} must be a string or an array of text parts.");
        var text = new System.Text.StringBuilder();
        foreach (JsonElement part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String)
                throw ApiException.BadParam(where, $"{where}: every part must be an object with a 'type'.");
            string kind = type.GetString()!;
            if (kind != "text" && !(assistant && kind == "refusal"))
                throw ApiException.BadParam(where, $"{where}: '{kind}' parts are not supported (text only).");
            if (!part.TryGetProperty(kind, out JsonElement t) || t.ValueKind != JsonValueKind.String)
                throw ApiException.BadParam(where, $"{where}: a {kind} part needs a string '{kind}'.");
            text.Append(t.GetString());
        }
        return text.ToString();
    }

    /// <summary>Sampling fields, streaming flags and the context check shared by both endpoints.</summary>
    private ParsedRequest Finish(JsonElement root, int[] prompt, int? maxTokens, ChatStructuredOutput.Plan? tools)
    {
        if (prompt.Length >= contextLength)
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. However, your prompt has {prompt.Length} tokens (at least one must be left to generate).",
                param: "messages", code: "context_length_exceeded");
        if (maxTokens is int m && prompt.Length + (long)m > contextLength)
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. However, you requested {prompt.Length + (long)m} tokens ({prompt.Length} in the prompt, {m} for the completion).",
                param: "max_tokens", code: "context_length_exceeded");
        if (tools?.Constraint != null && ReadResponseFormat(root) != null)
            throw ApiException.BadParam("response_format", "'response_format' together with 'tools' is not supported: the reply is a tool call or text. Send tool_choice \"none\" to use response_format.");
        var defaults = new SamplingOptions();
        var options = new SamplingOptions
        {
            MaxTokens = maxTokens ?? contextLength - prompt.Length,
            Temperature = OptionalFloat(root, "temperature", 0, 2) ?? defaults.Temperature,
            TopP = OptionalFloat(root, "top_p", 0, 1) is float p ? (p == 0 ? float.Epsilon : p) : defaults.TopP,
            TopK = OptionalInt(root, "top_k", 0, int.MaxValue) ?? defaults.TopK,
            MinP = OptionalFloat(root, "min_p", 0, 1) ?? defaults.MinP,
            PresencePenalty = OptionalFloat(root, "presence_penalty", -2, 2) ?? 0,
            FrequencyPenalty = OptionalFloat(root, "frequency_penalty", -2, 2) ?? 0,
            RepetitionPenalty = OptionalFloat(root, "repetition_penalty", 0.01f, 100) ?? 1,
            Seed = OptionalLong(root, "seed") is long seed ? unchecked((int)(seed ^ (seed >> 32))) : null,
            StopSequences = ReadStops(root),
            Constraint = tools?.Constraint ?? ReadResponseFormat(root),
            LogitBias = ReadLogitBias(root),
        };
        bool stream = OptionalBool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out JsonElement so) && so.ValueKind != JsonValueKind.Null)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiException.BadParam("stream_options", "'stream_options' must be an object.");
            includeUsage = OptionalBool(so, "include_usage", "stream_options.include_usage") ?? false;
        }
        try
        {
            options.Validate(vocabSize);
        }
        catch (GemmaException e)
        {
            throw ApiException.BadParam("sampling", e.Message);
        }
        bool several = tools?.ParsesCalls == true && OptionalBool(root, "parallel_tool_calls") == true;
        return new ParsedRequest(prompt, options, stream, includeUsage, tools?.ParsesCalls ?? false, several);
    }

    /// <summary>
    /// <c>response_format</c>: <c>text</c> (none), <c>json_object</c> (any JSON object) or <c>json_schema</c>
    /// (<c>json_schema.schema</c>, always enforced, whatever <c>strict</c> says), compiled into an
    /// <see cref="OutputConstraint"/> that masks every token that cannot lead to a valid output. Compiled constraints
    /// are kept by schema text (they also keep the token masks they learn), up to <see cref="MaxCachedConstraints"/>.
    /// </summary>
    private OutputConstraint? ReadResponseFormat(JsonElement root)
    {
        if (!root.TryGetProperty("response_format", out JsonElement rf) || rf.ValueKind == JsonValueKind.Null) return null;
        string? type = rf.ValueKind == JsonValueKind.Object && rf.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                return Constraint(ObjectSchema);
            case "json_schema":
                if (!rf.TryGetProperty("json_schema", out JsonElement js) || js.ValueKind != JsonValueKind.Object
                    || !js.TryGetProperty("schema", out JsonElement schema) || schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                    throw ApiException.BadParam("response_format", "response_format json_schema needs json_schema.schema (an object).");
                return Constraint(schema.GetRawText());
            default:
                throw ApiException.BadParam("response_format", "response_format must be an object with type 'text', 'json_object' or 'json_schema'.");
        }
    }

    private const string ObjectSchema = "{\"type\":\"object\"}";
    private const int MaxCachedConstraints = 64;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, OutputConstraint> _constraints = new(StringComparer.Ordinal);

    private OutputConstraint Constraint(string schema)
    {
        if (_constraints.TryGetValue(schema, out OutputConstraint? known)) return known;
        OutputConstraint compiled;
        try
        {
            compiled = OutputConstraint.FromJsonSchema(schema);
        }
        catch (GemmaException e)
        {
            throw ApiException.BadParam("response_format", e.Message);
        }
        if (_constraints.Count >= MaxCachedConstraints) _constraints.Clear();
        return _constraints.GetOrAdd(schema, compiled);
    }

    private static List<string>? ReadStops(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out JsonElement stop) || stop.ValueKind == JsonValueKind.Null) return null;
        if (stop.ValueKind == JsonValueKind.String)
            return stop.GetString()!.Length > 0 ? [stop.GetString()!] : throw ApiException.BadParam("stop", "'stop' must not be empty.");
        if (stop.ValueKind != JsonValueKind.Array) throw ApiException.BadParam("stop", "'stop' must be a string or an array of strings.");
        if (stop.GetArrayLength() > MaxStops) throw ApiException.BadParam("stop", $"At most {MaxStops} stop sequences.");
        var list = new List<string>();
        foreach (JsonElement s in stop.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.String || s.GetString()!.Length == 0)
                throw ApiException.BadParam("stop", "Every stop sequence must be a non-empty string.");
            list.Add(s.GetString()!);
        }
        return list.Count > 0 ? list : null;
    }

    /// <summary>OpenAI's <c>logit_bias</c>: token id (as a string key) → bias in [-100, 100]; -100 bans the token.</summary>
    private Dictionary<int, float>? ReadLogitBias(JsonElement root)
    {
        if (!root.TryGetProperty("logit_bias", out JsonElement bias) || bias.ValueKind == JsonValueKind.Null) return null;
        if (bias.ValueKind != JsonValueKind.Object) throw ApiException.BadParam("logit_bias", "'logit_bias' must be an object of token id → bias.");
        var map = new Dictionary<int, float>();
        foreach (JsonProperty p in bias.EnumerateObject())
        {
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id >= vocabSize)
                throw ApiException.BadParam("logit_bias", $"logit_bias key '{p.Name}' is not a token id in [0, {vocabSize}).");
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out double v) || v < -100 || v > 100)
                throw ApiException.BadParam("logit_bias", $"logit_bias[{p.Name}] must be a number in [-100, 100].");
            map[id] = v <= -100 ? float.NegativeInfinity : (float)v;
        }
        return map.Count > 0 ? map : null;
    }

    private static void RequireObject(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ApiException(400, "The request body must be a JSON object.");
    }

    private static int? OptionalInt(JsonElement root, string name, int min, int max)
    {
        if (!root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < min || v > max)
            throw ApiException.BadParam(name, $"'{name}' must be an integer in [{min}, {max}].");
        return (int)v;
    }

    private static long? OptionalLong(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v)) throw ApiException.BadParam(name, $"'{name}' must be an integer.");
        return v;
    }

    private static float? OptionalFloat(JsonElement root, string name, float min, float max)
    {
        if (!root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !(v >= min && v <= max))
            throw ApiException.BadParam(name, $"'{name}' must be a number in [{min}, {max}].");
        return (float)v;
    }

    private static bool? OptionalBool(JsonElement root, string name, string? param = null)
    {
        if (!root.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.BadParam(param ?? name, $"'{param ?? name}' must be true or false."),
        };
    }
}
