using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;
using Gemma.Tests.Generation;

namespace Gemma.Tests.Serve;

/// <summary>A real Kestrel on 127.0.0.1 (free port) serving the demo model, and raw-HTTP helpers.</summary>
internal sealed class ServeTestServer : IAsyncDisposable
{
    public const string Key = "test-key-123";

    private ServeTestServer(GemmaServer server)
    {
        Server = server;
        Http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public GemmaServer Server { get; }
    public HttpClient Http { get; }
    public Uri ApiBase => new(Server.BaseAddress, "v1");

    public static async Task<ServeTestServer> StartAsync(ServerOptions? options = null)
    {
        options ??= new ServerOptions();
        GemmaServer server = await GemmaServer.StartAsync(options with { Host = "127.0.0.1", Port = 0, ApiKey = options.ApiKey ?? Key }, () => DemoModel.Instance, ownsModel: false);
        await server.Loaded;
        if (server.LoadError != null) throw new InvalidOperationException(server.LoadError);
        return new ServeTestServer(server);
    }

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, string json, string? key = Key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        HttpResponseMessage response = await Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        JsonElement body = text.Length > 0 && text.TrimStart().StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return ((int)response.StatusCode, body, response);
    }

    public async Task<(int Status, string Text)> GetAsync(string path, string? key = Key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (key != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using HttpResponseMessage response = await Http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>One gauge or counter from /metrics.</summary>
    public async Task<double> MetricAsync(string name)
    {
        (_, string text) = await GetAsync("/metrics");
        foreach (string line in text.Split('\n'))
            if (line.StartsWith(name + " ", StringComparison.Ordinal)) return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"No metric {name} in:\n{text}");
    }

    /// <summary>Waits (bounded) until no slot is busy and the queue is empty.</summary>
    public async Task WaitIdleAsync(TimeSpan? limit = null)
    {
        DateTime end = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(20));
        while (await MetricAsync("gemma_slots_active") > 0 || await MetricAsync("gemma_queue_length") > 0)
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("The server did not become idle.");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }

    // Expected values come from the library's one-sequence path, not from the server.

    public static GemmaModel Model => DemoModel.Instance;

    public static int[] ChatIds(params Gemma.Core.Tokenization.GemmaChatMessage[] messages) => ChatTemplate.EncodeToIds(Model.RequireTokenizer(), messages);

    /// <summary>Greedy text of a fresh <see cref="TextGenerator"/> for these prompt ids.</summary>
    public static string Greedy(int[] prompt, int maxTokens, IReadOnlyDictionary<int, float>? bias = null)
    {
        using var generator = new TextGenerator(Model, 1024);
        return string.Concat(generator.Generate(prompt, SamplingOptions.Greedy with { MaxTokens = maxTokens, LogitBias = bias }));
    }

    /// <summary>logit_bias JSON that bans every end id, so a generation runs to its token budget.</summary>
    public static string BanEndJson()
    {
        GemmaTokenizer t = Model.RequireTokenizer();
        var ids = new HashSet<int>(Model.Config.EosTokenIds) { t.EosId, t.EndOfTurnId };
        return "{" + string.Join(",", ids.Where(i => i >= 0).Select(i => $"\"{i}\":-100")) + "}";
    }

    public static Dictionary<int, float> BanEnd()
    {
        GemmaTokenizer t = Model.RequireTokenizer();
        var ids = new HashSet<int>(Model.Config.EosTokenIds) { t.EosId, t.EndOfTurnId };
        return ids.Where(i => i >= 0).ToDictionary(i => i, _ => float.NegativeInfinity);
    }
}
