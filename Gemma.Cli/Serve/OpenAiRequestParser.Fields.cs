using System.Text.Json;

namespace Gemma.Cli.Serve;

/// <summary>Which top-level request fields are read, refused, or ignored and reported.</summary>
internal sealed partial class OpenAiRequestParser
{
    /// <summary>
    /// Fields we refuse rather than silently ignore: each would change what the client gets back (several choices,
    /// log probabilities, audio, the legacy <c>function_call</c> reply form).
    /// </summary>
    private static void CheckUnsupported(JsonElement root, bool chat)
    {
        if (OptionalInt(root, "n", 1, int.MaxValue) is > 1) throw ApiException.BadParam("n", "Only n = 1 is supported.");
        if (root.TryGetProperty("logprobs", out JsonElement lp) && lp.ValueKind is not (JsonValueKind.Null or JsonValueKind.False))
            throw ApiException.BadParam("logprobs", "'logprobs' is not supported.");
        if (!chat) return;
        if (OptionalInt(root, "top_logprobs", 0, 20) is > 0) throw ApiException.BadParam("top_logprobs", "'top_logprobs' is not supported.");
        foreach (string legacy in (ReadOnlySpan<string>)["functions", "function_call"])
            if (root.TryGetProperty(legacy, out JsonElement f) && f.ValueKind != JsonValueKind.Null)
                throw ApiException.BadParam(legacy, $"The deprecated '{legacy}' is not supported: send 'tools' and 'tool_choice'.");
        if (root.TryGetProperty("audio", out JsonElement audio) && audio.ValueKind != JsonValueKind.Null)
            throw ApiException.BadParam("audio", "Audio output is not supported (text only).");
        if (root.TryGetProperty("modalities", out JsonElement modalities) && modalities.ValueKind != JsonValueKind.Null
            && (modalities.ValueKind != JsonValueKind.Array || modalities.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.String || m.GetString() != "text")))
            throw ApiException.BadParam("modalities", "'modalities' must be [\"text\"] (text only).");
    }

    /// <summary>
    /// The top-level fields each endpoint reads (or accepts on purpose with no effect here: <c>model</c> — one model
    /// is served, whatever the name —, <c>user</c>, <c>metadata</c>, <c>store</c>, <c>service_tier</c>, …). Other
    /// fields are ignored, as llama-server and vLLM do (clients send vendor extras such as <c>reasoning_effort</c>
    /// or <c>cache_prompt</c>), and named in the <c>X-Gemma-Ignored-Params</c> response header so a typo is visible.
    /// </summary>
    private static readonly HashSet<string> ChatFields = new(StringComparer.Ordinal)
    {
        "messages", "model", "max_completion_tokens", "max_tokens", "n", "logprobs", "top_logprobs", "tools", "tool_choice",
        "parallel_tool_calls", "response_format", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
        "frequency_penalty", "repetition_penalty", "seed", "stop", "logit_bias", "stream", "stream_options",
        "functions", "function_call", "audio", "modalities",
        "user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
    };

    private static readonly HashSet<string> CompletionFields = new(StringComparer.Ordinal)
    {
        "prompt", "model", "max_tokens", "n", "logprobs", "echo", "suffix", "best_of", "response_format", "temperature",
        "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty", "seed", "stop",
        "logit_bias", "stream", "stream_options", "user",
    };

    /// <summary>
    /// The request's top-level fields this server does not read, in request order, as a header value: at most 16
    /// names of at most 64 characters, any character but ASCII letters, digits, '_', '-' and '.' shown as '?' (a
    /// header holds ASCII only), joined by ", "; empty when none.
    /// </summary>
    public static string IgnoredFields(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object) return "";
        HashSet<string> known = chat ? ChatFields : CompletionFields;
        string[] names = [.. root.EnumerateObject().Select(p => p.Name).Where(n => !known.Contains(n)).Take(17).Select(HeaderSafe)];
        return names.Length > 16 ? string.Join(", ", names[..16]) + ", ..." : string.Join(", ", names);
    }

    private static string HeaderSafe(string name) =>
        string.Create(Math.Min(name.Length, 64), name, static (span, n) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = char.IsAsciiLetterOrDigit(n[i]) || n[i] is '_' or '-' or '.' ? n[i] : '?';
        });
}
