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
/// name, then the arguments in fragments as the model writes them. With <paramref name="severalCalls"/>
/// (<c>parallel_tool_calls: true</c>) a call reply is an array of calls and starts with <c>[</c> (text may then start
/// with <c>{</c>); its calls stream the same way, one index after the other.
/// </remarks>
internal sealed class CompletionWriter(HttpContext context, string model, bool chat, bool includeUsage, bool parsesCalls = false, bool severalCalls = false)
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
        var calls = parsesCalls ? new CallStream(this, severalCalls ? '[' : '{') : null;
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

    /// <summary>
    /// The tool calls of a whole reply — one call object or an array of them — with each <c>arguments</c> exactly as
    /// the model wrote it; none when the reply is text or a call cut short by the token budget.
    /// </summary>
    private static ToolCallBody[] CallsOf(string reply)
    {
        IReadOnlyList<AIContent> contents = ChatStructuredOutput.ParseReplyContents(reply);
        if (contents.Count == 0 || !contents.All(c => c is FunctionCallContent)) return [];
        using JsonDocument doc = JsonDocument.Parse(reply);
        JsonElement[] items = doc.RootElement.ValueKind == JsonValueKind.Array ? [.. doc.RootElement.EnumerateArray()] : [doc.RootElement];
        return [.. items.Select(item => new ToolCallBody
        {
            Id = NewCallId(), Type = "function",
            Function = new FunctionCallBody { Name = item.GetProperty("name").GetString(), Arguments = item.GetProperty("arguments").GetRawText() },
        })];
    }

    /// <summary>
    /// Streams a reply that may be tool calls. Undecided until the first character; text then streams as content.
    /// Calls come in the library's fixed output form — one call <c>{"name": "NAME", "arguments": ARGS}</c>, or with
    /// <c>parallel_tool_calls</c> an array <c>[CALL, CALL, …]</c> — and stream as OpenAI streams them: as soon as a
    /// call's name is complete, a header chunk (index, id, type, name, empty arguments), then ARGS in fragments as the
    /// model writes them, then the next call with the next index. ARGS is scanned (strings, escapes, nesting), so its
    /// end is known exactly and nothing needs holding back. A reply that leaves this form (the constraint does not
    /// allow it; kept for safety) has its remaining calls sent whole at the end.
    /// </summary>
    private sealed class CallStream(CompletionWriter writer, char opener)
    {
        private static readonly Regex Header = new("""\G\{"name": "((?:[^"\\]|\\.)*)", "arguments": """, RegexOptions.CultureInvariant);
        private const int LongestHeader = 128; // {"name": "…", "arguments": with a 64-character name, and slack

        private enum State { Open, Header, Arguments, CallEnd, Separator, Space, Done, Whole }

        private readonly StringBuilder _reply = new();
        private bool _text;            // decided: plain text
        private State _state = opener == '[' ? State.Open : State.Header;
        private int _scan;             // characters of the reply consumed by the state machine
        private int _calls;            // call headers sent (the next call's index)
        private int _argsFrom;         // first character of the current ARGS not yet sent
        private int _depth;            // ARGS nesting while scanning
        private bool _inString, _escape;

        public async Task PushAsync(string piece)
        {
            _reply.Append(piece);
            if (_text)
            {
                await writer.WriteChunk(new ChatDeltaBody { Content = piece }, null);
                return;
            }
            if (_reply.Length > 0 && _reply[0] != opener)
            {
                _text = true;
                await writer.WriteChunk(new ChatDeltaBody { Content = _reply.ToString() }, null);
                return;
            }
            await AdvanceAsync();
        }

        /// <summary>Consumes what has arrived: headers become header chunks, ARGS characters become fragments.</summary>
        private async Task AdvanceAsync()
        {
            while (_scan < _reply.Length)
            {
                switch (_state)
                {
                    case State.Open:
                        _scan++; // the '[' (checked by PushAsync)
                        _state = State.Header;
                        break;
                    case State.Header:
                        // Only the unconsumed tail (a header being written: short) is copied, not the whole reply.
                        string pending = _reply.ToString(_scan, _reply.Length - _scan);
                        Match m = Header.Match(pending);
                        if (!m.Success)
                        {
                            if (pending.Length > LongestHeader) _state = State.Whole;
                            return; // not complete yet
                        }
                        string name = JsonSerializer.Deserialize("\"" + m.Groups[1].Value + "\"", ServeJson.Api.String)!;
                        await writer.WriteChunk(new ChatDeltaBody
                        {
                            ToolCalls = [new ToolCallBody { Index = _calls, Id = NewCallId(), Type = "function", Function = new FunctionCallBody { Name = name, Arguments = "" } }],
                        }, null);
                        _calls++;
                        _scan = _argsFrom = _scan + m.Length;
                        _depth = 0;
                        _inString = _escape = false;
                        _state = State.Arguments;
                        break;
                    case State.Arguments:
                        if (!ScanArguments()) { await SendArgumentsAsync(_scan); return; }
                        await SendArgumentsAsync(_scan);
                        _state = State.CallEnd;
                        break;
                    case State.CallEnd:
                        if (_reply[_scan] != '}') { _state = State.Whole; return; }
                        _scan++;
                        _state = opener == '[' ? State.Separator : State.Done;
                        break;
                    case State.Separator:
                        char c = _reply[_scan];
                        if (c == ']') { _scan++; _state = State.Done; }
                        else if (c == ',') { _scan++; _state = State.Space; }
                        else { _state = State.Whole; return; }
                        break;
                    case State.Space:
                        if (_reply[_scan] == ' ') _scan++;   // ", " between calls; the header must follow
                        _state = State.Header;
                        break;
                    default:
                        return; // Done or Whole
                }
            }
        }

        /// <summary>Advances <c>_scan</c> over ARGS (one JSON object); true when its closing brace was consumed.</summary>
        private bool ScanArguments()
        {
            for (; _scan < _reply.Length; _scan++)
            {
                char c = _reply[_scan];
                if (_inString)
                {
                    if (_escape) _escape = false;
                    else if (c == '\\') _escape = true;
                    else if (c == '"') _inString = false;
                }
                else if (c == '"') _inString = true;
                else if (c is '{' or '[') _depth++;
                else if (c is '}' or ']')
                {
                    if (--_depth == 0) { _scan++; return true; }
                }
                else if (_depth == 0) { _state = State.Whole; return false; } // ARGS must be an object
            }
            return false;
        }

        /// <summary>Sends what is left; true when the reply was tool calls.</summary>
        public async Task<bool> EndAsync()
        {
            if (_text || _reply.Length == 0) return false;
            string reply = _reply.ToString();
            ToolCallBody[] calls = CallsOf(reply);
            if (_calls == 0)
            {
                if (calls.Length == 0)
                {
                    await writer.WriteChunk(new ChatDeltaBody { Content = reply }, null);
                    return false;
                }
            }
            else if (_state == State.Arguments)
            {
                // A call cut short by the token budget keeps every character sent (finish reason "length").
                await SendArgumentsAsync(_scan);
                return calls.Length > 0;
            }
            // Calls that did not stream (the whole reply, or the rest after leaving the fixed form) go whole.
            for (int i = _calls; i < calls.Length; i++)
            {
                ToolCallBody c = calls[i];
                await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = i, Id = c.Id, Type = c.Type, Function = new FunctionCallBody { Name = c.Function.Name, Arguments = "" } }] }, null);
                await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = i, Function = new FunctionCallBody { Arguments = c.Function.Arguments } }] }, null);
            }
            return calls.Length > 0;
        }

        private async Task SendArgumentsAsync(int end)
        {
            if (end <= _argsFrom) return;
            string fragment = _reply.ToString(_argsFrom, end - _argsFrom);
            _argsFrom = end;
            await writer.WriteChunk(new ChatDeltaBody { ToolCalls = [new ToolCallBody { Index = _calls - 1, Function = new FunctionCallBody { Arguments = fragment } }] }, null);
        }
    }

    private static string Reason(GenerationResult r) => r.Stop == StopKind.Length ? "length" : "stop";

    private static Usage UsageOf(GenerationResult r) => new()
    {
        PromptTokens = r.PromptTokens, CompletionTokens = r.CompletionTokens, TotalTokens = r.PromptTokens + r.CompletionTokens,
        PromptTokensDetails = new PromptTokensDetails { CachedTokens = r.CachedTokens },
        CompletionTokensDetails = new CompletionTokensDetails(),
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
