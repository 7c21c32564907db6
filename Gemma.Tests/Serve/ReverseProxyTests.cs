using System.ClientModel;
using System.Net;
using System.Text;
using Gemma.Cli.Serve;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using OpenAI;
using OpenAI.Chat;
using Yarp.ReverseProxy.Configuration;
using ChatCompletion = OpenAI.Chat.ChatCompletion;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;

namespace Gemma.Tests.Serve;

/// <summary>
/// <c>gemma serve</c> behind a real YARP reverse proxy (in-process, both on loopback), the deployment docs/server.md
/// describes: server-sent events must pass through unbuffered, a client that goes away must still free its slot, and
/// the OpenAI client must work through the proxy unchanged.
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class ReverseProxyTests
{
    private ServeTestServer _server = null!;
    private WebApplication _proxy = null!;
    private HttpClient _http = null!;
    private Uri _proxyBase = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 2 });
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "gemma", ClusterId = "replicas", Match = new RouteMatch { Path = "{**catch-all}" } }],
            [new ClusterConfig { ClusterId = "replicas", Destinations = new Dictionary<string, DestinationConfig> { ["a"] = new() { Address = _server.Server.BaseAddress.ToString() } } }]);
        _proxy = builder.Build();
        _proxy.MapReverseProxy();
        await _proxy.StartAsync();
        _proxyBase = new Uri(_proxy.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        _http = new HttpClient { BaseAddress = _proxyBase, Timeout = TimeSpan.FromSeconds(60) };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _proxy.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Test]
    public async Task StreamingPassesThroughUnbufferedAndADisconnectFreesTheSlot()
    {
        double before = await _server.MetricAsync("gemma_completion_tokens_total");
        const int Budget = 1000, Streams = 2;
        var open = new List<(HttpResponseMessage Response, StreamReader Reader)>();
        for (int i = 0; i < Streams; i++)
        {
            string body = $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"Debian とは {i}\"}}],\"max_tokens\":{Budget},\"stream\":true,\"logit_bias\":{ServeTestServer.BanEndJson()}}}";
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new("Bearer", ServeTestServer.Key);
            HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
            open.Add((response, new StreamReader(await response.Content.ReadAsStreamAsync())));
        }
        foreach ((_, StreamReader reader) in open)
        {
            // Read up to the first chunk with generated text.
            string? line;
            while ((line = await reader.ReadLineAsync()) != null && !(line.StartsWith("data: {", StringComparison.Ordinal) && line.Contains("\"content\":\"") && !line.Contains("\"content\":\"\"")))
            {
            }
            Assert.That(line, Is.Not.Null, "a content chunk arrived");
        }
        // Those chunks came through the proxy while the generations were still running: the slots are busy and far
        // fewer than the budgets' tokens exist (a buffering proxy delivers nothing before the end of a response).
        Assert.That(await _server.MetricAsync("gemma_slots_active"), Is.EqualTo(Streams));
        Assert.That(await _server.MetricAsync("gemma_completion_tokens_total") - before, Is.LessThan(Streams * Budget));
        foreach ((HttpResponseMessage response, StreamReader reader) in open)
        {
            reader.Dispose();
            response.Dispose();
        }
        // The clients went away: the proxy aborts its upstream requests and the server frees the slots early.
        await _server.WaitIdleAsync(TimeSpan.FromSeconds(30));
        Assert.That(await _server.MetricAsync("gemma_completion_tokens_total") - before, Is.LessThan(Streams * Budget));
    }

    [Test]
    public async Task TheOpenAiClientWorksThroughTheProxy()
    {
        var client = new ChatClient("gemma2-ja-demo", new ApiKeyCredential(ServeTestServer.Key), new OpenAIClientOptions { Endpoint = new Uri(_proxyBase, "v1") });
        const string Question = "パッケージをインストールするには";
        string expected = ServeTestServer.Greedy(ServeTestServer.ChatIds(GemmaMessage.User(Question)), 20);
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 20 };

        ChatCompletion whole = (await client.CompleteChatAsync([new UserChatMessage(Question)], options)).Value;
        Assert.That(whole.Content[0].Text, Is.EqualTo(expected));

        var streamed = new StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (StreamingChatCompletionUpdate u in client.CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            foreach (ChatMessageContentPart p in u.ContentUpdate) streamed.Append(p.Text);
            usage ??= u.Usage;
        }
        Assert.That(streamed.ToString(), Is.EqualTo(expected));
        Assert.That(usage?.OutputTokenCount, Is.EqualTo(whole.Usage.OutputTokenCount));

        // Errors pass through as the server wrote them.
        var bad = new ChatClient("gemma2-ja-demo", new ApiKeyCredential("wrong"), new OpenAIClientOptions { Endpoint = new Uri(_proxyBase, "v1") });
        ClientResultException e = Assert.ThrowsAsync<ClientResultException>(() => bad.CompleteChatAsync([new UserChatMessage(Question)], options))!;
        Assert.That(e.Status, Is.EqualTo(401));
    }
}
