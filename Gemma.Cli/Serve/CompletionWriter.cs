using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Gemma.Cli.Serve;

/// <summary>
/// Turns a request's events into an OpenAI response: one JSON body, or server-sent events (<c>data: {chunk}</c> per
/// piece of text, a last chunk with the finish reason, the usage chunk when <c>stream_options.include_usage</c>, then
/// <c>data: [DONE]</c>). Chat and legacy completions differ only in the object names and where the text goes.
/// </summary>
internal sealed class CompletionWriter(HttpContext context, string model, bool chat, bool includeUsage)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private const string Fingerprint = "gemma.net";

    public async Task WholeAsync(GenerationRequest request)
    {
        var text = new StringBuilder();
        GenerationResult? result = null;
        await foreach (GenerationEvent e in request.Events.Reader.ReadAllAsync(context.RequestAborted))
        {
            if (e.Text != null) text.Append(e.Text);
            if (e.Result != null) result = e.Result;
        }
        GenerationResult r = result ?? throw new ApiException(500, "The generation ended without a result.", "server_error");
        ThrowIfFailed(r);
        if (chat)
        {
            await GemmaServer.WriteJson(context, new ChatCompletion
            {
                Id = _id, Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [new ChatChoice { Index = 0, Message = new ChatMessageBody { Role = "assistant", Content = text.ToString() }, FinishReason = Reason(r) }],
                Usage = UsageOf(r),
            }, ServeJson.Api.ChatCompletion);
        }
        else
        {
            await GemmaServer.WriteJson(context, new TextCompletion
            {
                Id = _id, Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [new TextChoice { Index = 0, Text = text.ToString(), FinishReason = Reason(r) }],
                Usage = UsageOf(r),
            }, ServeJson.Api.TextCompletion);
        }
    }

    public async Task StreamAsync(GenerationRequest request)
    {
        HttpResponse response = context.Response;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        if (chat) await WriteChunk(new ChatMessageBody { Role = "assistant", Content = "" }, null);
        GenerationResult? result = null;
        await foreach (GenerationEvent e in request.Events.Reader.ReadAllAsync(context.RequestAborted))
        {
            if (e.Text != null) await WriteChunk(chat ? new ChatMessageBody { Content = e.Text } : null, null, e.Text);
            if (e.Result != null) result = e.Result;
        }
        GenerationResult r = result ?? new GenerationResult(StopKind.Error, 0, 0, 0, "The generation ended without a result.");
        if (r.Stop is StopKind.Stop or StopKind.Length)
        {
            await WriteChunk(chat ? new ChatMessageBody() : null, Reason(r), "");
            if (includeUsage) await WriteUsageChunk(r);
        }
        else
        {
            // Headers are sent: the error goes in-band, as OpenAI streams it.
            try { ThrowIfFailed(r); }
            catch (ApiException error) { await WriteEvent(JsonSerializer.SerializeToUtf8Bytes(error.Body, ServeJson.Api.ErrorBody)); }
        }
        await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), context.RequestAborted);
        await response.Body.FlushAsync(context.RequestAborted);
    }

    private Task WriteChunk(ChatMessageBody? delta, string? finishReason, string text = "")
    {
        byte[] json = chat
            ? JsonSerializer.SerializeToUtf8Bytes(new ChatCompletion
            {
                Id = _id, Object = "chat.completion.chunk", Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [new ChatChoice { Index = 0, Delta = delta, FinishReason = finishReason }],
            }, ServeJson.Api.ChatCompletion)
            : JsonSerializer.SerializeToUtf8Bytes(new TextCompletion
            {
                Id = _id, Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [new TextChoice { Index = 0, Text = text, FinishReason = finishReason }],
            }, ServeJson.Api.TextCompletion);
        return WriteEvent(json);
    }

    private Task WriteUsageChunk(GenerationResult r)
    {
        byte[] json = chat
            ? JsonSerializer.SerializeToUtf8Bytes(new ChatCompletion
            {
                Id = _id, Object = "chat.completion.chunk", Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [], Usage = UsageOf(r),
            }, ServeJson.Api.ChatCompletion)
            : JsonSerializer.SerializeToUtf8Bytes(new TextCompletion
            {
                Id = _id, Created = _created, Model = model, SystemFingerprint = Fingerprint, Choices = [], Usage = UsageOf(r),
            }, ServeJson.Api.TextCompletion);
        return WriteEvent(json);
    }

    private async Task WriteEvent(byte[] json)
    {
        Stream body = context.Response.Body;
        await body.WriteAsync(DataPrefix, context.RequestAborted);
        await body.WriteAsync(json, context.RequestAborted);
        await body.WriteAsync(EventEnd, context.RequestAborted);
        await body.FlushAsync(context.RequestAborted);
    }

    private static string Reason(GenerationResult r) => r.Stop == StopKind.Length ? "length" : "stop";

    private static Usage UsageOf(GenerationResult r) => new()
    {
        PromptTokens = r.PromptTokens, CompletionTokens = r.CompletionTokens, TotalTokens = r.PromptTokens + r.CompletionTokens,
        PromptTokensDetails = new PromptTokensDetails { CachedTokens = r.CachedTokens },
    };

    private void ThrowIfFailed(GenerationResult r)
    {
        switch (r.Stop)
        {
            case StopKind.Timeout: throw new ApiException(504, r.Error ?? "Timed out.", "timeout", code: "timeout");
            case StopKind.Cancelled:
                context.RequestAborted.ThrowIfCancellationRequested();
                throw new ApiException(503, r.Error ?? "Cancelled.", "service_unavailable");
            case StopKind.Error:
                bool sampling = r.Error?.StartsWith("Sampling:", StringComparison.Ordinal) == true;
                throw new ApiException(sampling ? 400 : 500, r.Error ?? "Generation failed.", sampling ? "invalid_request_error" : "server_error");
        }
    }
}
