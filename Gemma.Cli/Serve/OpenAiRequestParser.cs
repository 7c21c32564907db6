using System.Text.Json;
using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Cli.Serve;

/// <summary>A validated generation request: prompt ids, sampling, and how to answer.</summary>
internal sealed record ParsedRequest(int[] Prompt, SamplingOptions Options, bool Stream, bool IncludeUsage);

/// <summary>
/// Reads OpenAI request bodies (<c>/v1/chat/completions</c>, <c>/v1/completions</c>) into a <see cref="ParsedRequest"/>.
/// Every field is checked for type and range; a problem is an <see cref="ApiException"/> (400) naming the field.
/// Unknown fields are ignored, as OpenAI-compatible servers do (clients send <c>user</c>, <c>store</c>, …).
/// Absent sampling fields take <see cref="SamplingOptions"/>' defaults (llama.cpp's), not OpenAI's temperature 1.
/// </summary>
internal sealed class OpenAiRequestParser(GemmaTokenizer tokenizer, int vocabSize, int contextLength)
{
    private const int MaxStops = 16;

    public ParsedRequest ParseChat(JsonElement root)
    {
        RequireObject(root);
        if (!root.TryGetProperty("messages", out JsonElement messages) || messages.ValueKind != JsonValueKind.Array)
            throw ApiException.BadParam("messages", "'messages' is required and must be an array of messages.");
        if (messages.GetArrayLength() == 0) throw ApiException.BadParam("messages", "'messages' must not be empty.");
        var list = new List<GemmaChatMessage>();
        int index = 0;
        foreach (JsonElement m in messages.EnumerateArray())
        {
            list.Add(ReadMessage(m, $"messages[{index}]"));
            index++;
        }
        CheckUnsupported(root, chat: true);
        int[] prompt;
        try
        {
            prompt = ChatTemplate.EncodeToIds(tokenizer, list);
        }
        catch (GemmaException e)
        {
            throw ApiException.BadParam("messages", e.Message);
        }
        int? max = OptionalInt(root, "max_completion_tokens", 1, int.MaxValue) ?? OptionalInt(root, "max_tokens", 1, int.MaxValue);
        return Finish(root, prompt, max);
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
        return Finish(root, prompt, max);
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

    private GemmaChatMessage ReadMessage(JsonElement m, string where)
    {
        if (m.ValueKind != JsonValueKind.Object) throw ApiException.BadParam(where, $"{where} must be an object with 'role' and 'content'.");
        string role = m.TryGetProperty("role", out JsonElement r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
            : throw ApiException.BadParam($"{where}.role", $"{where}.role must be a string.");
        if (m.TryGetProperty("tool_calls", out JsonElement calls) && calls.ValueKind == JsonValueKind.Array && calls.GetArrayLength() > 0)
            throw ApiException.BadParam($"{where}.tool_calls", "Tool calls are not supported yet.");
        GemmaChatRole parsed = role switch
        {
            "system" or "developer" => GemmaChatRole.System,
            "user" => GemmaChatRole.User,
            "assistant" => GemmaChatRole.Assistant,
            "tool" or "function" => throw ApiException.BadParam($"{where}.role", "Tool messages are not supported yet."),
            _ => throw ApiException.BadParam($"{where}.role", $"Unknown role '{role}': expected system, developer, user or assistant."),
        };
        if (!m.TryGetProperty("content", out JsonElement content)) throw ApiException.BadParam($"{where}.content", $"{where}.content is required.");
        return new GemmaChatMessage(parsed, ReadContent(content, $"{where}.content"));
    }

    /// <summary>Message content: a string, or an array of <c>{"type":"text","text":…}</c> parts (concatenated).</summary>
    private static string ReadContent(JsonElement content, string where)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw ApiException.BadParam(where, $"{where} must be a string or an array of text parts.");
        var text = new System.Text.StringBuilder();
        foreach (JsonElement part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String)
                throw ApiException.BadParam(where, $"{where}: every part must be an object with a 'type'.");
            if (type.GetString() != "text") throw ApiException.BadParam(where, $"{where}: '{type.GetString()}' parts are not supported (text only).");
            if (!part.TryGetProperty("text", out JsonElement t) || t.ValueKind != JsonValueKind.String)
                throw ApiException.BadParam(where, $"{where}: a text part needs a string 'text'.");
            text.Append(t.GetString());
        }
        return text.ToString();
    }

    /// <summary>Fields we refuse rather than silently ignore.</summary>
    private static void CheckUnsupported(JsonElement root, bool chat)
    {
        if (OptionalInt(root, "n", 1, int.MaxValue) is > 1) throw ApiException.BadParam("n", "Only n = 1 is supported.");
        if (root.TryGetProperty("response_format", out JsonElement rf) && rf.ValueKind != JsonValueKind.Null)
        {
            string? type = rf.ValueKind == JsonValueKind.Object && rf.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type is "json_object" or "json_schema")
                throw ApiException.BadParam("response_format", $"response_format '{type}' is not supported yet (constrained generation is coming).");
            if (type != "text") throw ApiException.BadParam("response_format", "response_format must be an object with type 'text', 'json_object' or 'json_schema'.");
        }
        if (root.TryGetProperty("tools", out JsonElement tools) && tools.ValueKind != JsonValueKind.Null)
        {
            if (tools.ValueKind != JsonValueKind.Array) throw ApiException.BadParam("tools", "'tools' must be an array.");
            if (tools.GetArrayLength() > 0) throw ApiException.BadParam("tools", "Tools are not supported yet.");
        }
        if (root.TryGetProperty("tool_choice", out JsonElement choice) && choice.ValueKind != JsonValueKind.Null
            && !(choice.ValueKind == JsonValueKind.String && choice.GetString() is "none" or "auto"))
            throw ApiException.BadParam("tool_choice", "Tools are not supported yet ('tool_choice' may only be \"none\" or \"auto\").");
        if (root.TryGetProperty("logprobs", out JsonElement lp) && lp.ValueKind is not (JsonValueKind.Null or JsonValueKind.False))
            throw ApiException.BadParam("logprobs", "'logprobs' is not supported.");
        if (chat && root.TryGetProperty("top_logprobs", out JsonElement tlp) && tlp.ValueKind != JsonValueKind.Null)
            throw ApiException.BadParam("top_logprobs", "'top_logprobs' is not supported.");
    }

    /// <summary>Sampling fields, streaming flags and the context check shared by both endpoints.</summary>
    private ParsedRequest Finish(JsonElement root, int[] prompt, int? maxTokens)
    {
        if (prompt.Length >= contextLength)
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. However, your prompt has {prompt.Length} tokens (at least one must be left to generate).",
                param: "messages", code: "context_length_exceeded");
        if (maxTokens is int m && prompt.Length + (long)m > contextLength)
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. However, you requested {prompt.Length + (long)m} tokens ({prompt.Length} in the prompt, {m} for the completion).",
                param: "max_tokens", code: "context_length_exceeded");
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
        return new ParsedRequest(prompt, options, stream, includeUsage);
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
