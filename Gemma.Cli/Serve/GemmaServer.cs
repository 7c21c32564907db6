using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gemma.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gemma.Cli.Serve;

/// <summary>
/// <c>gemma serve</c>: an OpenAI-compatible HTTP server on Kestrel. Routes are plain <see cref="RequestDelegate"/>s
/// (no reflection-based binding) and bodies go through JsonDocument / source-generated serializers, so the CLI
/// still publishes with Native AOT. The model loads in the background after the socket is bound: until it is ready
/// <c>/health</c> answers 503 and the API 503.
/// </summary>
internal sealed class GemmaServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerOptions _options;
    private readonly Func<GemmaModel> _load;
    private readonly bool _ownsModel;
    private readonly byte[]? _apiKeyHash;
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private volatile ServerState? _state;
    private volatile string? _loadError;
    private Task? _loading;

    /// <summary>What exists once the model is loaded.</summary>
    private sealed record ServerState(GemmaModel Model, BatchScheduler Scheduler, OpenAiRequestParser Parser, string ModelName);

    public ServerMetrics Metrics { get; } = new();

    private GemmaServer(ServerOptions options, Func<GemmaModel> load, bool ownsModel)
    {
        _options = options;
        _load = load;
        _ownsModel = ownsModel;
        if (options.ApiKey != null) _apiKeyHash = SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
            if (IPAddress.TryParse(options.Host, out IPAddress? ip)) k.Listen(ip, options.Port);
            else if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else throw new GemmaException($"--host must be an IP address or 'localhost', got '{options.Host}'.");
        });
        builder.Services.AddRequestDecompression();  // Content-Encoding gzip/deflate/br bodies; the size limit applies to the decoded bytes
        _app = builder.Build();
        _app.Use(Guard);
        _app.UseRequestDecompression();
        Map("/health", HttpMethods.Get, Health);
        Map("/", HttpMethods.Get, context => ChatPage.Write(context));
        Map("/metrics", HttpMethods.Get, Metrics_);
        // The API also answers without the /v1 prefix, as llama-server does: clients are often given the server's
        // root as their base URL and append /chat/completions to it.
        foreach (string api in (ReadOnlySpan<string>)["/v1", ""])
        {
            Map(api + "/models", HttpMethods.Get, Models);
            Map(api + "/models/{**id}", HttpMethods.Get, ModelById);
            Map(api + "/chat/completions", HttpMethods.Post, context => Completions(context, chat: true));
            Map(api + "/completions", HttpMethods.Post, context => Completions(context, chat: false));
        }
        Map("/tokenize", HttpMethods.Post, Tokenize);
        Map("/detokenize", HttpMethods.Post, Detokenize);
        _app.MapFallback(NoRoute);
    }

    /// <summary>The methods of each fixed route, for 405 answers and OPTIONS.</summary>
    private readonly Dictionary<string, string> _allow = new(StringComparer.Ordinal);

    /// <summary>The same for the routes ending in a catch-all (<c>/v1/models/{**id}</c>), by the path before it.</summary>
    private readonly List<(string Prefix, string Allow)> _allowUnder = [];

    private const string CatchAll = "{**id}";

    /// <summary>A route; GET routes also answer HEAD (Kestrel sends the headers and drops the body).</summary>
    private void Map(string pattern, string method, RequestDelegate handler)
    {
        string[] methods = method == HttpMethods.Get ? [HttpMethods.Get, HttpMethods.Head] : [method];
        _app.MapMethods(pattern, methods, handler);
        string allow = string.Join(", ", [.. methods, HttpMethods.Options]);
        if (pattern.EndsWith(CatchAll, StringComparison.Ordinal)) _allowUnder.Add((pattern[..^CatchAll.Length], allow));
        else _allow[pattern] = allow;
    }

    /// <summary>The <c>Allow</c> value of the route serving <paramref name="path"/>, or null when none does.</summary>
    private string? AllowOf(string path)
    {
        if (_allow.TryGetValue(path, out string? allow)) return allow;
        foreach ((string prefix, string under) in _allowUnder)
            if (path.StartsWith(prefix, StringComparison.Ordinal)) return under;
        return null;
    }

    /// <summary>
    /// OPTIONS on a route: 204 with <c>Allow</c>; a route asked with another method: 405 (the <c>Allow</c> header set
    /// here stays on the error response); anything else: 404.
    /// </summary>
    private Task NoRoute(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "";
        if (AllowOf(path) is not string allow)
            throw new ApiException(404, $"Unknown endpoint {context.Request.Method} {context.Request.Path}.", code: "not_found");
        context.Response.Headers.Allow = allow;
        if (!HttpMethods.IsOptions(context.Request.Method))
            throw new ApiException(405, $"{path} does not answer {context.Request.Method} (allowed: {allow}).", code: "method_not_allowed");
        context.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    /// <summary>The address Kestrel bound (with the real port when 0 was asked for).</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Why the model could not be loaded, once <see cref="Loaded"/> completed without it.</summary>
    public string? LoadError => _loadError;

    /// <summary>Completes when the model is loaded (or failed to load).</summary>
    public Task Loaded => _loading ?? Task.CompletedTask;

    /// <summary>Binds the socket, then loads the model in the background.</summary>
    public static async Task<GemmaServer> StartAsync(ServerOptions options, Func<GemmaModel> load, bool ownsModel)
    {
        var server = new GemmaServer(options, load, ownsModel);
        await server._app.StartAsync();
        string address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1"));
        server._loading = Task.Run(server.LoadModel);
        return server;
    }

    private void LoadModel()
    {
        try
        {
            GemmaModel model = _load();
            try
            {
                var scheduler = new BatchScheduler(model, _options, Metrics);
                string name = _options.ModelName ?? ModelId(model.Location);
                var parser = new OpenAiRequestParser(model.RequireTokenizer(), model.Config.VocabSize, scheduler.ContextLength);
                _state = new ServerState(model, scheduler, parser, name);
            }
            catch
            {
                if (_ownsModel) model.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is GemmaException or IOException or UnauthorizedAccessException)
        {
            _loadError = e.Message;
        }
    }

    /// <summary>The folder or file name without extension or description: <c>gemma2-ja-demo</c>, <c>gemma-2-2b-jpn-it-q8_0</c>.</summary>
    internal static string ModelId(string location)
    {
        string name = location.TrimEnd('/', '\\');
        int description = name.IndexOf(" (", StringComparison.Ordinal);
        if (description > 0) name = name[..description];
        name = Path.GetFileName(name);
        return name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? name[..^5] : name;
    }

    public Task WaitForShutdownAsync(CancellationToken token) => _app.WaitForShutdownAsync(token);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        if (_loading != null) await _loading;
        ServerState? state = _state;
        if (state != null)
        {
            state.Scheduler.Dispose();
            if (_ownsModel) state.Model.Dispose();
        }
        await _app.DisposeAsync();
    }

    /// <summary>Authentication, error objects for every failure, and request counting around all routes.</summary>
    private async Task Guard(HttpContext context, RequestDelegate next)
    {
        string path = context.Request.Path.Value ?? "";
        bool open = path is "/health" or "/" || HttpMethods.IsOptions(context.Request.Method);
        AllowCors(context);
        try
        {
            if (!open)
            {
                Metrics.Requests.Add(1);
                CheckApiKey(context);
            }
            await next(context);
        }
        catch (Exception e) when (e is ApiException or BadHttpRequestException or JsonException)
        {
            ApiException api = e switch
            {
                ApiException a => a,
                BadHttpRequestException { StatusCode: 413 } => new ApiException(413, $"The request body exceeds {_options.MaxBodyBytes} bytes.", code: "request_too_large"),
                BadHttpRequestException b => new ApiException(b.StatusCode, b.Message),
                _ => new ApiException(400, $"The body is not valid JSON: {e.Message}", code: "invalid_json"),
            };
            await WriteError(context, api);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception e) when (!context.RequestAborted.IsCancellationRequested)
        {
            // A bug, not bad input: answer 500 with the error object and keep serving.
            await WriteError(context, new ApiException(500, $"Internal error: {e.Message}", "server_error"));
        }
    }

    /// <summary>
    /// CORS for the origins of <c>--cors</c>: the allow-origin header on every answer (errors included, so a browser
    /// client can read them), and for a preflight (OPTIONS, answered 204 by <see cref="NoRoute"/>) the methods and the
    /// request headers it asks for — the JS SDK sends its own <c>x-stainless-*</c> headers.
    /// </summary>
    private void AllowCors(HttpContext context)
    {
        string origin = context.Request.Headers.Origin.ToString();
        if (origin.Length == 0 || _options.CorsOrigins.Count == 0) return;
        bool any = _options.CorsOrigins.Contains("*");
        if (!any && !_options.CorsOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase)) return;
        IHeaderDictionary headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = any ? "*" : origin;
        headers.Vary = "Origin";
        headers.AccessControlExposeHeaders = "X-Gemma-Ignored-Params, Retry-After";
        if (!HttpMethods.IsOptions(context.Request.Method)) return;
        headers.AccessControlAllowMethods = "GET, HEAD, POST, OPTIONS";
        string asked = context.Request.Headers.AccessControlRequestHeaders.ToString();
        headers.AccessControlAllowHeaders = asked.Length > 0 && asked.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or ',' or ' ')
            ? asked : "Authorization, Content-Type";
        headers.AccessControlMaxAge = "600";
    }

    private async Task WriteError(HttpContext context, ApiException error)
    {
        Metrics.RequestErrors.Add(1);
        if (context.Response.HasStarted) return;  // a stream already under way reports errors in-band
        context.Response.StatusCode = error.Status;
        if (error.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer";
        if (error.Status == 429) context.Response.Headers.RetryAfter = "1";
        await WriteJson(context, error.Body, ServeJson.Api.ErrorBody);
    }

    /// <summary>Bearer token check; hashes both sides so the comparison is constant-time and length-blind.</summary>
    private void CheckApiKey(HttpContext context)
    {
        if (_apiKeyHash == null) return;
        string header = context.Request.Headers.Authorization.ToString();
        const string Prefix = "Bearer ";
        byte[] given = SHA256.HashData(Encoding.UTF8.GetBytes(header.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) ? header[Prefix.Length..].Trim() : ""));
        if (!CryptographicOperations.FixedTimeEquals(given, _apiKeyHash))
            throw new ApiException(401, "Invalid or missing API key (Authorization: Bearer KEY).", "authentication_error", code: "invalid_api_key");
    }

    private ServerState Ready() =>
        _state ?? throw new ApiException(503, _loadError != null ? $"The model failed to load: {_loadError}" : "The model is still loading.", "service_unavailable", code: "model_not_ready");

    private Task Health(HttpContext context)
    {
        bool ready = _state != null;
        context.Response.StatusCode = ready ? 200 : 503;
        string status = ready ? "ok" : _loadError != null ? "error: " + _loadError : "loading";
        return WriteJson(context, new HealthStatus { Status = status }, ServeJson.Api.HealthStatus);
    }

    private Task Metrics_(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        return context.Response.WriteAsync(Metrics.Render(_state?.Scheduler.QueueLength ?? 0, _options.Parallel));
    }

    private Task Models(HttpContext context)
    {
        ServerState s = Ready();
        return WriteJson(context, new ModelList { Data = [Card(s)] }, ServeJson.Api.ModelList);
    }

    /// <summary><c>GET /v1/models/{id}</c>: the served model, or OpenAI's 404 <c>model_not_found</c>.</summary>
    private Task ModelById(HttpContext context)
    {
        ServerState s = Ready();
        string id = context.Request.RouteValues["id"] as string ?? "";
        if (id != s.ModelName)
            throw new ApiException(404, $"The model '{id}' does not exist; this server serves '{s.ModelName}'.", code: "model_not_found");
        return WriteJson(context, Card(s), ServeJson.Api.ModelCard);
    }

    private ModelCard Card(ServerState s) => new() { Id = s.ModelName, Created = _created, ContextLength = s.Scheduler.ContextLength };

    private async Task Tokenize(HttpContext context)
    {
        ServerState s = Ready();
        using JsonDocument doc = await ReadJson(context);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ApiException(400, "The request body must be a JSON object.");
        int[] ids;
        if (root.TryGetProperty("messages", out _))
        {
            ids = s.Parser.ParseChat(root).Prompt;
        }
        else
        {
            JsonElement text = root.TryGetProperty("content", out JsonElement c) ? c : root.TryGetProperty("prompt", out JsonElement p) ? p : default;
            if (text.ValueKind != JsonValueKind.String) throw ApiException.BadParam("content", "'content' (or 'prompt') must be a string.");
            bool special = root.TryGetProperty("add_special", out JsonElement a) && a.ValueKind == JsonValueKind.True;
            ids = s.Model.RequireTokenizer().EncodeToIds(text.GetString()!, addBos: special);
        }
        await WriteJson(context, new TokenizeResult { Tokens = ids, Count = ids.Length, MaxModelLength = s.Scheduler.ContextLength }, ServeJson.Api.TokenizeResult);
    }

    private async Task Detokenize(HttpContext context)
    {
        ServerState s = Ready();
        using JsonDocument doc = await ReadJson(context);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("tokens", out JsonElement tokens) || tokens.ValueKind != JsonValueKind.Array)
            throw ApiException.BadParam("tokens", "'tokens' must be an array of token ids.");
        var ids = new int[tokens.GetArrayLength()];
        int i = 0;
        foreach (JsonElement t in tokens.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || (uint)id >= (uint)s.Model.Config.VocabSize)
                throw ApiException.BadParam("tokens", $"tokens[{i}] is not a token id in [0, {s.Model.Config.VocabSize}).");
            ids[i++] = id;
        }
        await WriteJson(context, new DetokenizeResult { Content = s.Model.RequireTokenizer().Decode(ids) }, ServeJson.Api.DetokenizeResult);
    }

    private async Task Completions(HttpContext context, bool chat)
    {
        ServerState s = Ready();
        using JsonDocument doc = await ReadJson(context);
        ParsedRequest parsed = chat ? s.Parser.ParseChat(doc.RootElement) : s.Parser.ParseCompletion(doc.RootElement);
        string ignored = OpenAiRequestParser.IgnoredFields(doc.RootElement, chat);
        if (ignored.Length > 0) context.Response.Headers["X-Gemma-Ignored-Params"] = ignored;
        var request = new GenerationRequest(parsed.Prompt, parsed.Options, context.RequestAborted, _options.RequestTimeout);
        if (!s.Scheduler.TryEnqueue(request))
        {
            Metrics.Rejected.Add(1);
            throw new ApiException(429, "The server is busy (request queue full); retry later.", "rate_limit_exceeded", code: "rate_limit_exceeded");
        }
        var writer = new CompletionWriter(context, s.ModelName, chat, parsed.IncludeUsage, parsed.ParsesCalls, parsed.SeveralCalls);
        if (parsed.Stream) await writer.StreamAsync(request);
        else await writer.WholeAsync(request);
    }

    /// <summary>Reads the body (Kestrel enforces the size limit) as JSON; malformed JSON or a duplicate key is a 400.</summary>
    private static async Task<JsonDocument> ReadJson(HttpContext context)
    {
        try
        {
            // A key given twice is ambiguous (which one wins differs between parsers): a 400, not a silent pick.
            JsonDocument doc = await JsonDocument.ParseAsync(context.Request.Body, new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false }, context.RequestAborted);
            try
            {
                CheckEscapes(doc.RootElement);
            }
            catch
            {
                doc.Dispose();
                throw;
            }
            return doc;
        }
        catch (InvalidOperationException e)
        {
            // An unpaired surrogate escape (see CheckEscapes); the duplicate-key check decodes names while parsing.
            throw new ApiException(400, $"The body is not valid JSON text: {e.Message}", code: "invalid_json");
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"The body is not valid JSON: {e.Message}", code: "invalid_json");
        }
        catch (InvalidDataException e)
        {
            throw new ApiException(400, $"The body does not decode as its Content-Encoding says: {e.Message}", code: "invalid_encoding");
        }
    }

    /// <summary>
    /// JsonDocument accepts a <c>\uD800</c> escape without its pair, but reading that string later throws
    /// InvalidOperationException: every string and property name holding a <c>\u</c> escape is decoded once here, so
    /// such a body is a 400 up front rather than a 500 wherever the string is read. (Depth ≤ 64, checked by the parse.)
    /// </summary>
    private static void CheckEscapes(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (JsonProperty p in e.EnumerateObject())
                {
                    if (JsonMarshal.GetRawUtf8PropertyName(p).IndexOf("\\u"u8) >= 0) _ = p.Name;
                    CheckEscapes(p.Value);
                }
                break;
            case JsonValueKind.Array:
                foreach (JsonElement item in e.EnumerateArray()) CheckEscapes(item);
                break;
            case JsonValueKind.String:
                if (JsonMarshal.GetRawUtf8Value(e).IndexOf("\\u"u8) >= 0) _ = e.GetString();
                break;
        }
    }

    internal static Task WriteJson<T>(HttpContext context, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted);
    }
}
