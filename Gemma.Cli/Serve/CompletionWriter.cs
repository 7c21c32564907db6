using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gemma.Core.Chat;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;

namespace Gemma.Cli.Serve;

/// <summary>
/// Turns a request's events into an OpenAI response: one JSON body, or server-sent events (<c>data: {chunk}</c> per
/// piece of text, a last chunk with the finish reason, the usage chunk when <c>stream_options.include_usage</c>, then
/// <c>data: [DONE]</c>). Chat and legacy completions differ only in the object names and where the text goes.
/// </summary>
/// <remarks>
/// With tools (<paramref name="parsesCalls"/>) the reply is a tool call or text, decided by its first character (the
/// constraint lets text start with anything but <c>{</c>). Text streams as content. A call is read back with the
/// library's <see cref="ChatStructuredOutput.ParseReply"/> and answered as OpenAI does: <c>message.tool_calls</c>
/// with <c>arguments</c> as a JSON string (the model's own text of the arguments object), <c>content</c> null,
/// finish reason <c>tool_calls</c>. Streamed, a call is a first <c>delta.tool_calls</c> chunk with index, id, type and
/// name, then the arguments in fragments as the model writes them.
/// </remarks>
internal sealed class CompletionWriter(HttpContext context, string model, bool chat, bool includeUsage, bool parsesCalls = false)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private const string Fingerprint = "gemma.net";

    public async Task WholeAsync(GenerationRequest request)
    {
        var text = new StringBuilder();
        await foreach (string piece in request.ReadTextAsync(context.RequestAborted)) text.Append(piece);
        GenerationResult r = await request.Completion;
        ThrowIfFailed(r);
        if (chat)
        {
            string reply = text.ToString();
            ToolCallBody[] calls = parsesCalls ? CallsOf(reply) : [];
            ChatMessageBody message = calls.Length > 0 ? new ChatMessageBody { Content = null, ToolCalls = calls } : new ChatMessageBody { Content = reply };
            await GemmaServer.WriteJson(context, new ChatCompletion
            {
                Id = _id, Created = _created, Model = model, SystemFingerprint = Fingerprint,
                Choices = [new ChatChoice { Index = 0, Message = message, FinishReason = calls.Length > 0 ? "tool_calls" : Reason(r) }],
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
        if (chat) await WriteChunk(new ChatDeltaBody { Role = "assistant", Content = "" }, null);
        var calls = parsesCalls ? new CallStream(this) : null;
        await foreach (string piece in request.ReadTextAsync(context.RequestAborted))
        {
            if (calls != null) await calls.PushAsync(piece);
            else await WriteChunk(chat ? new ChatDeltaBody { Content = piece } : null, null, piece);
        }
        GenerationResult r = await request.Completion;
        if (r.Stop is StopKind.Stop or StopKind.Length)
        {
            bool called = calls != null && await calls.EndAsync();
            await WriteChunk(chat ? new ChatDeltaBody() : null, called ? "tool_calls" : Reason(r), "");
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

    private Task WriteChunk(ChatDeltaBody? delta, string? finishReason, string text = "")
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

    private static string NewCallId() => "call_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    /// <summary>The tool calls of a whole reply (none when it is text, or a call cut short by the token budget).</summary>
    private static ToolCallBody[] CallsOf(string reply)
    {
        if (ChatStructuredOutput.ParseReply(reply) is not FunctionCallContent call) return [];
        return [new ToolCallBody { Id = NewCallId(), Type = "function", Function = new FunctionCallBody { Name = call.Name, Arguments = RawArguments(reply) } }];
    }

    /// <summary>The text of the <c>arguments</c> member of a call object, exactly as the model wrote it.</summary>
    private static string RawArguments(string reply)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(reply);
        var reader = new Utf8JsonReader(utf8);
        reader.Read();  // {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool arguments = reader.ValueTextEquals("arguments");
            reader.Read();
            long start = reader.TokenStartIndex;
            reader.Skip();
            if (arguments) return Encoding.UTF8.GetString(utf8, (int)start, (int)(reader.BytesConsumed - start));
        }
        throw new InvalidOperationException("A parsed tool call has no arguments member.");
    }

    /// <summary>
    /// Streams a reply that may be a tool call. Undecided until the first character; text then streams as content.
    /// A call <c>{"name": "NAME", "arguments": ARGS}</c> (the library's fixed output form) streams as soon as its name
    /// is complete: the header chunk, then ARGS in fragments, always holding back a trailing <c>}</c> (it may be the
    /// call object's own end). A reply that is a call in another form is sent whole at the end.
    /// </summary>
    private sealed class CallStream(CompletionWriter writer)
    {
        private static readonly Regex Header = new("""^\{"name": "((?:[^"\\]|\\.)*)", "arguments": """, RegexOptions.CultureInvariant);
        private readonly StringBuilder _reply = new();
        private bool _text;          // decided: plain text
        private int _argsStart = -1; // header sent; where ARGS starts in the reply
        private int _argsSent;       // characters of ARGS already sent

        public async Task PushAsync(string piece)
        {
            _reply.Append(piece);
            if (_text)
            {
                await writer.WriteChunk(new ChatDeltaBody { Content = piece }, null);
                return;
            }
            if (_reply.Length > 0 && _reply[0] != '{')
            {
                _text = true;
                await writer.WriteChunk(new ChatDeltaBody { Content = _reply.ToString() }, null);
                return;
            }
            if (_argsStart < 0)
            {
                Match m = Header.Match(_reply.ToString());
                if (!m.Success) return;
                string name = JsonSerializer.Deserialize("\"" + m.Groups[1].Value + "\"", ServeJson.Api.String)!;
                _argsStart = m.Length;
                await writer.WriteChunk(new ChatDeltaBody
                {
                    ToolCalls = [new ToolCallBody { Index = 0, Id = NewCallId(), Type = "function", Function = new FunctionCallBody { Name = name, Arguments = "" } }],
                }, null);
            }
            int end = _reply.Length - (_reply[^1] == '}' ? 1 : 0);
            await SendArgumentsAsync(end);
        }

        /// <summary>Sends what is left; true when the reply was a tool call.</summary>
        public async Task<bool> EndAsync()
        {
            if (_text || _reply.Length == 0) return false;
            string reply = _reply.ToString();
            bool complete = ChatStructuredOutput.ParseReply(reply) is FunctionCallContent;
            if (_argsStart >= 0)
            {
                // A complete call ends with the call object's '}'; a call cut short keeps every character sent.
                await SendArgumentsAsync(complete ? reply.Length - 1 : reply.Length);
                return complete;
            }
            ToolCallBody[] calls = CallsOf(reply);
            if (calls.Length == 0)
            {
                await writer.WriteChunk(new ChatDeltaBody { Content = reply }, null);
                return false;
            }
            for (int i = 0; i < calls.Length; i++)
            {
                ToolCallBody c = calls[i];
                await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = i, Id = c.Id, Type = c.Type, Function = new FunctionCallBody { Name = c.Function.Name, Arguments = "" } }] }, null);
                await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = i, Function = new FunctionCallBody { Arguments = c.Function.Arguments } }] }, null);
            }
            return true;
        }

        private async Task SendArgumentsAsync(int end)
        {
            int from = _argsStart + _argsSent;
            if (end <= from) return;
            string fragment = _reply.ToString(from, end - from);
            _argsSent += fragment.Length;
            await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = 0, Function = new FunctionCallBody { Arguments = fragment } }] }, null);
        }
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
