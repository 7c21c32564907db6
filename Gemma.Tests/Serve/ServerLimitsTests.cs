using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using NUnit.Framework;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;

namespace Gemma.Tests.Serve;

/// <summary>Queue limits, timeouts, loading state, and prefix reuse across sliding-window layers.</summary>
[Category("Serve")]
[NonParallelizable]
public class ServerLimitsTests
{
    private static string LongStream(string question, int maxTokens) =>
        $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{question}\"}}],\"max_tokens\":{maxTokens},\"stream\":true,\"logit_bias\":{ServeTestServer.BanEndJson()}}}";

    private static async Task<(HttpResponseMessage Response, Stream Body)> OpenStream(ServeTestServer server, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new("Bearer", ServeTestServer.Key);
        HttpResponseMessage response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return (response, await response.Content.ReadAsStreamAsync());
    }

    [Test]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        await using ServeTestServer server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 1, QueueLength = 1 });
        (HttpResponseMessage r1, Stream s1) = await OpenStream(server, LongStream("一", 1000));
        Assert.That(await s1.ReadAsync(new byte[16]), Is.GreaterThan(0));
        DateTime end = DateTime.UtcNow.AddSeconds(10);
        // The role chunk is written before the scheduler admits the request: wait until it holds the only slot.
        while (await server.MetricAsync("gemma_slots_active") < 1 && DateTime.UtcNow < end) await Task.Delay(10);
        Assert.That(await server.MetricAsync("gemma_slots_active"), Is.EqualTo(1), "the first request runs in the only slot");
        Task<(HttpResponseMessage, Stream)> second = OpenStream(server, LongStream("二", 1000));
        while (await server.MetricAsync("gemma_queue_length") < 1 && DateTime.UtcNow < end) await Task.Delay(10);
        Assert.That(await server.MetricAsync("gemma_queue_length"), Is.EqualTo(1), "the second request waits in the queue");

        (int status, JsonElement json, HttpResponseMessage third) = await server.PostAsync("/v1/chat/completions", LongStream("三", 10).Replace("true", "false"));
        Assert.That(status, Is.EqualTo(429));
        Assert.That(third.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(1)));
        Assert.That(json.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("rate_limit_exceeded"));
        Assert.That(await server.MetricAsync("gemma_requests_rejected_total"), Is.EqualTo(1));

        s1.Dispose(); r1.Dispose();
        (HttpResponseMessage r2, Stream s2) = await second;
        s2.Dispose(); r2.Dispose();
        await server.WaitIdleAsync();
        (status, _, _) = await server.PostAsync("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3}");
        Assert.That(status, Is.EqualTo(200), "served again once the queue drained");
    }

    [Test]
    public async Task ARequestPastTheTimeoutGets504AndFreesItsSlot()
    {
        await using ServeTestServer server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 1, RequestTimeout = TimeSpan.FromTicks(1) });
        string body = $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"max_tokens\":1000,\"logit_bias\":{ServeTestServer.BanEndJson()},\"stream\":false}}";
        // The deadline has passed before the first step runs: deterministic, no race with the generation's speed.
        (int status, JsonElement json, _) = await server.PostAsync("/v1/chat/completions", body);
        Assert.That(status, Is.EqualTo(504));
        Assert.That(json.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("timeout"));
        await server.WaitIdleAsync();
    }

    [Test]
    public async Task AStreamPastTheTimeoutEndsWithAnInBandTimeoutErrorAndFreesItsSlot()
    {
        await using ServeTestServer server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 1, RequestTimeout = TimeSpan.FromMilliseconds(400) });
        (HttpResponseMessage response, Stream body) = await OpenStream(server, LongStream("一", 1000));
        Assert.That((int)response.StatusCode, Is.EqualTo(200), "the headers went out before the deadline");
        string text = await new StreamReader(body).ReadToEndAsync();
        string[] events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.That(events[^1], Is.EqualTo("data: [DONE]"));
        using JsonDocument error = JsonDocument.Parse(events[^2]["data: ".Length..]);
        Assert.That(error.RootElement.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("timeout"), text[^300..]);
        Assert.That(await server.MetricAsync("gemma_completion_tokens_total"), Is.LessThan(1000), "stopped at the deadline, not at the budget");
        body.Dispose(); response.Dispose();
        await server.WaitIdleAsync();
    }

    [Test]
    public async Task DeeplyNestedJsonIsA400()
    {
        await using ServeTestServer server = await ServeTestServer.StartAsync();
        string deep = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"metadata\":" + new string('[', 5000) + new string(']', 5000) + "}";
        (int status, JsonElement json, _) = await server.PostAsync("/v1/chat/completions", deep);
        Assert.That(status, Is.EqualTo(400));
        Assert.That(json.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("invalid_json"));
    }

    [Test]
    public async Task HealthIs503WhileTheModelLoads()
    {
        var gate = new ManualResetEventSlim();
        await using GemmaServer server = await GemmaServer.StartAsync(new ServerOptions { Port = 0 }, () => { gate.Wait(); return ServeTestServer.Model; }, ownsModel: false);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using (HttpResponseMessage loading = await http.GetAsync("/health")) Assert.That((int)loading.StatusCode, Is.EqualTo(503));
        using (HttpResponseMessage api = await http.PostAsync("/v1/chat/completions", new StringContent("{}")))
            Assert.That((int)api.StatusCode, Is.EqualTo(503));
        gate.Set();
        await server.Loaded;
        using HttpResponseMessage ready = await http.GetAsync("/health");
        Assert.That((int)ready.StatusCode, Is.EqualTo(200));
    }

    /// <summary>
    /// The demo model's sliding layers see 128 positions. A reply of 200 tokens after a 300-token prompt overwrites
    /// ring slots the prompt's prefix needs when the ring has no slack: the server must recompute (0 cached tokens),
    /// and with slack it reuses the prefix — both with the fresh prefill's answer.
    /// </summary>
    [TestCase(0, false)]
    [TestCase(512, true)]
    public async Task PrefixReuseAfterTheSlidingWindowIsCorrect(int slack, bool reuses)
    {
        await using ServeTestServer server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 1, ExtraCaches = 0, ReuseSlack = slack });
        string context = "";
        for (int i = 0; ServeTestServer.ChatIds(GemmaMessage.System(context), GemmaMessage.User("a")).Length < 300; i++) context += $"設定 {i} を確認する。";
        string Body(string question, int max) => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "system", ["content"] = context }, new Dictionary<string, string> { ["role"] = "user", ["content"] = question } },
            ["max_tokens"] = max, ["temperature"] = 0, ["logit_bias"] = ServeTestServer.BanEnd().ToDictionary(p => p.Key.ToString(), _ => -100),
        });
        (int status, _, _) = await server.PostAsync("/v1/chat/completions", Body("最初の質問", 200));
        Assert.That(status, Is.EqualTo(200));
        (status, JsonElement json, _) = await server.PostAsync("/v1/chat/completions", Body("次の質問", 12));
        Assert.That(status, Is.EqualTo(200));
        int cached = json.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        if (reuses) Assert.That(cached, Is.GreaterThan(250));
        else Assert.That(cached, Is.Zero);
        int[] prompt = ServeTestServer.ChatIds(GemmaMessage.System(context), GemmaMessage.User("次の質問"));
        string expected = ServeTestServer.Greedy(prompt, 12, ServeTestServer.BanEnd());
        Assert.That(json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), Is.EqualTo(expected));
    }
}
