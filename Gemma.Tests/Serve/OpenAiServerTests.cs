using System.ClientModel;
using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using OpenAI;
using OpenAI.Chat;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;
using ChatCompletion = OpenAI.Chat.ChatCompletion;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using ChatRole = Microsoft.Extensions.AI.ChatRole;
using ChatResponseFormat = OpenAI.Chat.ChatResponseFormat;

namespace Gemma.Tests.Serve;

/// <summary>
/// <c>gemma serve</c> on a real Kestrel, driven by the official OpenAI .NET client and Microsoft.Extensions.AI's
/// <c>AsIChatClient()</c>. Expected texts come from the library's one-sequence <see cref="Core.Generation.TextGenerator"/>.
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class OpenAiServerTests
{
    private ServeTestServer _server = null!;
    private ChatClient _client = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 4 });
        _client = new ChatClient("gemma2-ja-demo", new ApiKeyCredential(ServeTestServer.Key), new OpenAIClientOptions { Endpoint = _server.ApiBase });
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private static readonly string[] Questions =
    [
        "Debian とは何ですか？", "パッケージをインストールするには", "apt の使い方", "カーネルを更新する方法",
        "ネットワークの設定", "ユーザーを追加するには", "ファイルシステムの確認", "サービスを再起動する",
    ];

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0f, MaxOutputTokenCount = maxTokens };

    private static string Expected(string question, int maxTokens) =>
        ServeTestServer.Greedy(ServeTestServer.ChatIds(GemmaMessage.User(question)), maxTokens);

    [Test]
    public async Task HealthIsOpenAndTheApiNeedsTheKey()
    {
        Assert.That((await _server.GetAsync("/health", key: null)).Status, Is.EqualTo(200));
        (int status, string text) = await _server.GetAsync("/v1/models", key: null);
        Assert.That(status, Is.EqualTo(401));
        Assert.That(JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("invalid_api_key"));
        Assert.That((await _server.GetAsync("/v1/models", key: "test-key-12")).Status, Is.EqualTo(401));
        (status, text) = await _server.GetAsync("/v1/models");
        Assert.That(status, Is.EqualTo(200));
        JsonElement model = JsonDocument.Parse(text).RootElement.GetProperty("data")[0];
        Assert.That(model.GetProperty("id").GetString(), Is.EqualTo("gemma2-ja-demo"));
        Assert.That(model.GetProperty("object").GetString(), Is.EqualTo("model"));
    }

    [Test]
    public async Task OpenAiClientChatMatchesTheLibrary()
    {
        ChatCompletion completion = (await _client.CompleteChatAsync([new UserChatMessage(Questions[0])], Greedy(24))).Value;
        Assert.That(completion.Content[0].Text, Is.EqualTo(Expected(Questions[0], 24)));
        Assert.That(completion.FinishReason, Is.AnyOf(ChatFinishReason.Stop, ChatFinishReason.Length));
        Assert.That(completion.Usage.InputTokenCount, Is.EqualTo(ServeTestServer.ChatIds(GemmaMessage.User(Questions[0])).Length));
        Assert.That(completion.Usage.OutputTokenCount, Is.InRange(1, 24));
        Assert.That(completion.Id, Does.StartWith("chatcmpl-"));
        Assert.That(completion.CreatedAt.ToUnixTimeSeconds(), Is.EqualTo(DateTimeOffset.UtcNow.ToUnixTimeSeconds()).Within(120));
    }

    [Test]
    public async Task OpenAiClientStreamingEqualsTheWholeReplyAndReportsUsage()
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage(Questions[1])], Greedy(30)))
        {
            updates++;
            foreach (ChatMessageContentPart part in u.ContentUpdate) text.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.That(text.ToString(), Is.EqualTo(Expected(Questions[1], 30)));
        Assert.That(updates, Is.GreaterThan(3), "streamed in pieces");
        Assert.That(finish, Is.AnyOf(ChatFinishReason.Stop, ChatFinishReason.Length));
        Assert.That(usage, Is.Not.Null, "the client asks for stream_options.include_usage");
        Assert.That(usage!.OutputTokenCount, Is.InRange(1, 30));
    }

    [Test]
    public async Task ExtensionsAiChatClientStreamingAndNot()
    {
        IChatClient chat = _client.AsIChatClient();
        var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = 20 };
        ChatResponse response = await chat.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, Questions[2])], options);
        string expected = Expected(Questions[2], 20);
        Assert.That(response.Text, Is.EqualTo(expected));
        Assert.That(response.FinishReason, Is.AnyOf(Microsoft.Extensions.AI.ChatFinishReason.Stop, Microsoft.Extensions.AI.ChatFinishReason.Length));
        Assert.That(response.Usage?.InputTokenCount, Is.GreaterThan(0));

        var streamed = new StringBuilder();
        await foreach (ChatResponseUpdate u in chat.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, Questions[2])], options))
            streamed.Append(u.Text);
        Assert.That(streamed.ToString(), Is.EqualTo(expected));
    }

    [Test]
    public async Task LegacyCompletionsStopAtAStopSequence()
    {
        int[] ids = ServeTestServer.Model.RequireTokenizer().EncodeToIds("Debian システムでは", addBos: true);
        string full = ServeTestServer.Greedy(ids, 30);
        Assume.That(full.Length, Is.GreaterThan(6));
        string stop = full.Substring(full.Length / 2, 2);
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        string body = JsonSerializer.Serialize(new Dictionary<string, object> { ["prompt"] = "Debian システムでは", ["max_tokens"] = 30, ["temperature"] = 0, ["stop"] = new[] { stop } });
        (int status, JsonElement json, _) = await _server.PostAsync("/v1/completions", body);
        Assert.That(status, Is.EqualTo(200));
        Assert.That(json.GetProperty("object").GetString(), Is.EqualTo("text_completion"));
        JsonElement choice = json.GetProperty("choices")[0];
        Assert.That(choice.GetProperty("text").GetString(), Is.EqualTo(expected));
        Assert.That(choice.GetProperty("finish_reason").GetString(), Is.EqualTo("stop"));
        Assert.That(json.GetProperty("created").ValueKind, Is.EqualTo(JsonValueKind.Number));
    }

    [Test]
    public async Task JsonObjectResponseFormatGivesAJsonObject()
    {
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 60, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };
        ChatCompletion c = (await _client.CompleteChatAsync([new UserChatMessage("JSON でパッケージ情報を出力")], options)).Value;
        using JsonDocument doc = JsonDocument.Parse(c.Content[0].Text);
        Assert.That(doc.RootElement.ValueKind, Is.EqualTo(JsonValueKind.Object), c.Content[0].Text);
        Assert.That(c.FinishReason, Is.EqualTo(ChatFinishReason.Stop));
    }

    [Test]
    public async Task JsonSchemaResponseFormatIsEnforcedStreamingAndNot()
    {
        const string Schema = """
            {"type":"object","properties":{"name":{"type":"string","maxLength":20},"version":{"type":"integer"},"tags":{"type":"array","items":{"enum":["main","contrib"]},"maxItems":3}},
             "required":["name","version","tags"],"additionalProperties":false}
            """;
        var options = new ChatCompletionOptions
        {
            Temperature = 0f, MaxOutputTokenCount = 80,
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("package", BinaryData.FromString(Schema), jsonSchemaIsStrict: true),
        };
        ChatCompletion c = (await _client.CompleteChatAsync([new UserChatMessage("パッケージ")], options)).Value;
        var streamed = new StringBuilder();
        await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage("パッケージ")], options))
            foreach (ChatMessageContentPart p in u.ContentUpdate) streamed.Append(p.Text);
        Assert.That(streamed.ToString(), Is.EqualTo(c.Content[0].Text));
        using JsonDocument doc = JsonDocument.Parse(c.Content[0].Text);
        JsonElement root = doc.RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { "name", "version", "tags" }), c.Content[0].Text);
        Assert.That(root.GetProperty("name").GetString()!.Length, Is.LessThanOrEqualTo(20));
        Assert.That(root.GetProperty("version").ValueKind, Is.EqualTo(JsonValueKind.Number));
        Assert.That(root.GetProperty("tags").EnumerateArray().Select(t => t.GetString()), Is.SubsetOf(new[] { "main", "contrib" }));

        string bad = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"bogus\"}}}}}}";
        (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", bad);
        Assert.That(status, Is.EqualTo(400));
        Assert.That(json.GetProperty("error").GetProperty("param").GetString(), Is.EqualTo("response_format"));
    }

    [Test]
    public async Task TokenizeAndDetokenizeRoundTrip()
    {
        (int status, JsonElement json, _) = await _server.PostAsync("/tokenize", "{\"content\":\"Debian のパッケージ\"}");
        Assert.That(status, Is.EqualTo(200));
        int[] ids = json.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.That(ids, Is.EqualTo(ServeTestServer.Model.RequireTokenizer().EncodeToIds("Debian のパッケージ", addBos: false)));
        (status, json, _) = await _server.PostAsync("/detokenize", JsonSerializer.Serialize(new { tokens = ids }));
        Assert.That(status, Is.EqualTo(200));
        Assert.That(json.GetProperty("content").GetString(), Is.EqualTo("Debian のパッケージ"));
    }

    private static readonly (string Body, int Status, string? Param, string? Code)[] BadRequests =
    [
        ("{\"messages\":[{\"role\":\"user\"", 400, null, "invalid_json"),
        ("[1,2]", 400, null, null),
        ("{}", 400, "messages", null),
        ("{\"messages\":[]}", 400, "messages", null),
        ("{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "messages[0].role", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":42}]}", 400, "messages[0].content", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400, "messages[0].content", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", 400, "n", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", 400, "temperature", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", 400, "temperature", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}", 400, "top_p", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", 400, "max_tokens", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5000}", 400, "max_tokens", "context_length_exceeded"),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", 400, "stop", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"abc\":1}}", 400, "logit_bias", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"99999999\":1}}", 400, "logit_bias", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":1.5}", 400, "seed", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", 400, "stream", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}", 400, "response_format", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"retrieval\"}]}", 400, "tools[0].type", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", 400, "tool_choice", null),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", 400, "logprobs", null),
        ("{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}", 400, "messages", null),
    ];

    [Test]
    public async Task BadRequestsGetOpenAiErrorsAndTheServerKeepsServing()
    {
        foreach ((string body, int expectedStatus, string? param, string? code) in BadRequests)
        {
            (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", body);
            Assert.That(status, Is.EqualTo(expectedStatus), body);
            JsonElement error = json.GetProperty("error");
            Assert.That(error.GetProperty("message").GetString(), Is.Not.Empty, body);
            Assert.That(error.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"), body);
            if (param != null) Assert.That(error.GetProperty("param").GetString(), Is.EqualTo(param), body);
            if (code != null) Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code), body);
        }
        string longText = string.Concat(Enumerable.Repeat("Debian のパッケージ管理 ", 400));
        (int s2, JsonElement j2, _) = await _server.PostAsync("/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = longText } } }));
        Assert.That(s2, Is.EqualTo(400));
        Assert.That(j2.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("context_length_exceeded"));
        (int s3, JsonElement j3, _) = await _server.PostAsync("/v1/nothing", "{}");
        Assert.That(s3, Is.EqualTo(404));
        Assert.That(j3.GetProperty("error").GetProperty("message").GetString(), Does.Contain("/v1/nothing"));

        ChatCompletion ok = (await _client.CompleteChatAsync([new UserChatMessage(Questions[3])], Greedy(10))).Value;
        Assert.That(ok.Content[0].Text, Is.EqualTo(Expected(Questions[3], 10)));
    }

    [Test]
    public async Task OversizedBodyIs413()
    {
        await using ServeTestServer small = await ServeTestServer.StartAsync(new ServerOptions { MaxBodyBytes = 1000 });
        string body = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = new string('a', 5000) } } });
        (int status, JsonElement json, _) = await small.PostAsync("/v1/chat/completions", body);
        Assert.That(status, Is.EqualTo(413));
        Assert.That(json.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("request_too_large"));
        (status, _, _) = await small.PostAsync("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}");
        Assert.That(status, Is.EqualTo(200));
    }

    [Test]
    public async Task ManyConcurrentRequestsWithBadOnesAndCancellationsLoseNothing()
    {
        string[] expected = Questions.Select(q => Expected(q, 16)).ToArray();
        var good = new List<Task<(int Index, string Text)>>();
        for (int i = 0; i < 16; i++)
        {
            int q = i % Questions.Length;
            bool stream = i % 2 == 0;
            good.Add(Task.Run(async () =>
            {
                if (!stream) return (q, (await _client.CompleteChatAsync([new UserChatMessage(Questions[q])], Greedy(16))).Value.Content[0].Text);
                var sb = new StringBuilder();
                await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage(Questions[q])], Greedy(16)))
                    foreach (ChatMessageContentPart p in u.ContentUpdate) sb.Append(p.Text);
                return (q, sb.ToString());
            }));
        }
        var bad = Enumerable.Range(0, 6).Select(i => Task.Run(() => _server.PostAsync("/v1/chat/completions", BadRequests[i * 3].Body))).ToList();
        var cancelled = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            try
            {
                await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage(Questions[i])],
                    new ChatCompletionOptions { MaxOutputTokenCount = 500 }, cts.Token))
                    cts.Cancel();
            }
            catch (OperationCanceledException) { }
        })).ToList();

        foreach ((int index, string text) in await Task.WhenAll(good))
            Assert.That(text, Is.EqualTo(expected[index]), Questions[index]);
        foreach ((int status, _, _) in await Task.WhenAll(bad)) Assert.That(status, Is.EqualTo(400));
        await Task.WhenAll(cancelled);
        await _server.WaitIdleAsync();
    }

    [Test]
    public async Task ClientDisconnectFreesTheSlot()
    {
        double before = await _server.MetricAsync("gemma_completion_tokens_total");
        var streams = new List<(HttpResponseMessage Response, Stream Body)>();
        for (int i = 0; i < 4; i++)
        {
            string body = $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{Questions[i]}\"}}],\"max_tokens\":900,\"stream\":true,\"logit_bias\":{ServeTestServer.BanEndJson()}}}";
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new("Bearer", ServeTestServer.Key);
            HttpResponseMessage response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            Stream stream = await response.Content.ReadAsStreamAsync();
            var first = new byte[16];
            Assert.That(await stream.ReadAsync(first), Is.GreaterThan(0));
            streams.Add((response, stream));
        }
        foreach ((HttpResponseMessage response, Stream body) in streams)
        {
            body.Dispose();
            response.Dispose();
        }
        await _server.WaitIdleAsync(TimeSpan.FromSeconds(30));
        double generated = await _server.MetricAsync("gemma_completion_tokens_total") - before;
        Assert.That(generated, Is.LessThan(4 * 900), "the streams stopped when their clients went away");
    }

    [Test]
    public async Task RepeatedLongPrefixIsServedFromTheCacheWithTheSameAnswer()
    {
        // A ~900-token shared system prompt (context 1024): grown step by step to the size.
        string manual = "";
        for (int i = 0; ServeTestServer.ChatIds(GemmaMessage.System(manual), GemmaMessage.User(Questions[4])).Length < 900; i++)
            manual += $"手順 {i}: パッケージを確認する。";
        var system = GemmaMessage.System(manual);
        int[] first = ServeTestServer.ChatIds(system, GemmaMessage.User(Questions[4]));
        int[] second = ServeTestServer.ChatIds(system, GemmaMessage.User(Questions[5]));
        Assert.That(first.Length, Is.InRange(900, 1000));
        var options = Greedy(8);
        ChatCompletion a = (await _client.CompleteChatAsync([new SystemChatMessage(manual), new UserChatMessage(Questions[4])], options)).Value;
        ChatCompletion b = (await _client.CompleteChatAsync([new SystemChatMessage(manual), new UserChatMessage(Questions[5])], options)).Value;
        int common = first.Zip(second).TakeWhile(p => p.First == p.Second).Count();
        Assert.That(b.Usage.InputTokenDetails.CachedTokenCount, Is.EqualTo(common), "the shared prefix is reused");
        Assert.That(a.Content[0].Text, Is.EqualTo(ServeTestServer.Greedy(first, 8)));
        Assert.That(b.Content[0].Text, Is.EqualTo(ServeTestServer.Greedy(second, 8)));
        Assert.That(await _server.MetricAsync("gemma_prefix_cache_hits_total"), Is.GreaterThan(0));
    }
}
