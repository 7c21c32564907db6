using System.Text.Json.Serialization;

namespace Gemma.Cli.Serve;

// Response bodies of the OpenAI API subset we serve, serialized by the source-generated ServeJson (no reflection,
// Native AOT safe). Requests are read with JsonDocument instead (OpenAIRequestParser) so that every field's type and
// range gets an error that names the field.

internal sealed class ChatCompletion
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("object")] public string Object { get; init; } = "chat.completion";
    [JsonPropertyName("created")] public long Created { get; init; }
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("system_fingerprint")] public string? SystemFingerprint { get; init; }
    [JsonPropertyName("choices")] public required ChatChoice[] Choices { get; init; }
    [JsonPropertyName("usage")] public Usage? Usage { get; init; }
}

internal sealed class ChatChoice
{
    [JsonPropertyName("index")] public int Index { get; init; }
    [JsonPropertyName("message")] public ChatMessageBody? Message { get; init; }
    [JsonPropertyName("delta")] public ChatDeltaBody? Delta { get; init; }
    [JsonPropertyName("logprobs"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Logprobs { get; init; }
    [JsonPropertyName("finish_reason"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? FinishReason { get; init; }
}

/// <summary>A whole reply: <c>content</c> is written even when null (a reply of tool calls only), as OpenAI does.</summary>
internal sealed class ChatMessageBody
{
    [JsonPropertyName("role")] public string Role { get; init; } = "assistant";
    [JsonPropertyName("content"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Content { get; init; }
    /// <summary>Always null (the model has no refusal channel); OpenAI's message carries the field, and typed clients expect it.</summary>
    [JsonPropertyName("refusal"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Refusal { get; init; }
    [JsonPropertyName("tool_calls")] public ToolCallBody[]? ToolCalls { get; init; }
}

/// <summary>A streamed piece of a reply: only the fields that change (the last chunk's delta is <c>{}</c>).</summary>
internal sealed class ChatDeltaBody
{
    [JsonPropertyName("role")] public string? Role { get; init; }
    [JsonPropertyName("content")] public string? Content { get; init; }
    [JsonPropertyName("tool_calls")] public ToolCallBody[]? ToolCalls { get; init; }
}

/// <summary>
/// A tool call. Whole: <c>{id, type, function: {name, arguments}}</c>. Streamed: the first chunk of a call has
/// <c>index</c>, <c>id</c>, <c>type</c> and <c>function.name</c> with empty <c>arguments</c>, the next ones only
/// <c>index</c> and a fragment of <c>function.arguments</c>.
/// </summary>
internal sealed class ToolCallBody
{
    [JsonPropertyName("index")] public int? Index { get; init; }
    [JsonPropertyName("id")] public string? Id { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("function")] public required FunctionCallBody Function { get; init; }
}

internal sealed class FunctionCallBody
{
    [JsonPropertyName("name")] public string? Name { get; init; }
    /// <summary>The arguments as a JSON object in a string (OpenAI's form), or a fragment of it when streamed.</summary>
    [JsonPropertyName("arguments")] public string? Arguments { get; init; }
}

internal sealed class TextCompletion
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("object")] public string Object { get; init; } = "text_completion";
    [JsonPropertyName("created")] public long Created { get; init; }
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("system_fingerprint")] public string? SystemFingerprint { get; init; }
    [JsonPropertyName("choices")] public required TextChoice[] Choices { get; init; }
    [JsonPropertyName("usage")] public Usage? Usage { get; init; }
}

internal sealed class TextChoice
{
    [JsonPropertyName("index")] public int Index { get; init; }
    [JsonPropertyName("text")] public required string Text { get; init; }
    [JsonPropertyName("logprobs"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Logprobs { get; init; }
    [JsonPropertyName("finish_reason"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? FinishReason { get; init; }
}

internal sealed class Usage
{
    [JsonPropertyName("prompt_tokens")] public int PromptTokens { get; init; }
    [JsonPropertyName("completion_tokens")] public int CompletionTokens { get; init; }
    [JsonPropertyName("total_tokens")] public int TotalTokens { get; init; }
    [JsonPropertyName("prompt_tokens_details")] public PromptTokensDetails? PromptTokensDetails { get; init; }
    [JsonPropertyName("completion_tokens_details")] public CompletionTokensDetails? CompletionTokensDetails { get; init; }
}

/// <summary>OpenAI's breakdown of the completion tokens; Gemma 2 does not reason, so <c>reasoning_tokens</c> is 0.</summary>
internal sealed class CompletionTokensDetails
{
    [JsonPropertyName("reasoning_tokens")] public int ReasoningTokens { get; init; }
}

internal sealed class PromptTokensDetails
{
    [JsonPropertyName("cached_tokens")] public int CachedTokens { get; init; }
}

internal sealed class ModelList
{
    [JsonPropertyName("object")] public string Object { get; init; } = "list";
    [JsonPropertyName("data")] public required ModelCard[] Data { get; init; }
}

internal sealed class ModelCard
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("object")] public string Object { get; init; } = "model";
    [JsonPropertyName("created")] public long Created { get; init; }
    [JsonPropertyName("owned_by")] public string OwnedBy { get; init; } = "gemma.net";
    [JsonPropertyName("context_length")] public int ContextLength { get; init; }
}

internal sealed class ErrorBody
{
    [JsonPropertyName("error")] public required ErrorDetail Error { get; init; }
}

internal sealed class ErrorDetail
{
    [JsonPropertyName("message")] public required string Message { get; init; }
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("param"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Param { get; init; }
    [JsonPropertyName("code"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Code { get; init; }
}

internal sealed class TokenizeResult
{
    [JsonPropertyName("tokens")] public required int[] Tokens { get; init; }
    [JsonPropertyName("count")] public int Count { get; init; }
    [JsonPropertyName("max_model_len")] public int MaxModelLength { get; init; }
}

internal sealed class DetokenizeResult
{
    [JsonPropertyName("content")] public required string Content { get; init; }
}

internal sealed class HealthStatus
{
    [JsonPropertyName("status")] public required string Status { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(TextCompletion))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(TokenizeResult))]
[JsonSerializable(typeof(DetokenizeResult))]
[JsonSerializable(typeof(HealthStatus))]
[JsonSerializable(typeof(string))]
internal sealed partial class ServeJson : JsonSerializerContext
{
    /// <summary>
    /// The context the server writes with: non-ASCII text (Japanese replies) as UTF-8 rather than \uXXXX escapes.
    /// Safe here because the bodies are served as JSON / event streams, never embedded in HTML.
    /// </summary>
    public static ServeJson Api { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });
}

/// <summary>An API error: HTTP status and the OpenAI error object.</summary>
internal sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public ErrorBody Body => new() { Error = new ErrorDetail { Message = Message, Type = Type, Param = Param, Code = Code } };

    public static ApiException BadParam(string param, string message) => new(400, message, param: param);
}
