using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using NUnit.Framework;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;

namespace Gemma.Tests.Serve;

/// <summary>
/// What clients other than the .NET ones send (scripts/check-js-client.sh runs the real openai JS SDK and LangChain;
/// the bodies below are what they sent, replayed): the server answers them as the library answers the same
/// conversation, and HTTP edge cases (duplicate keys, gzip bodies, HEAD/OPTIONS/405, model lookup) get OpenAI answers.
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class ClientCompatibilityTests
{
    private ServeTestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 2 });

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private static string Content(JsonElement body) => body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content = null, bool key = true)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (key) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ServeTestServer.Key);
        return await _server.Http.SendAsync(request);
    }

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>openai 7.59.0 <c>chat.completions.create</c> with a developer message, text parts, a name, and fields that have no effect here.</summary>
    private const string JsSdkChat = """
        {"model":"gemma2-ja-demo","messages":[{"role":"developer","content":"Answer briefly."},{"role":"user","name":"alice","content":[{"type":"text","text":"Debian とは"},{"type":"text","text":"何ですか？"}]}],
         "temperature":0,"max_completion_tokens":16,"stop":["\n\n\n"],"seed":42,"user":"u-1","metadata":{"run":"check"},"store":false,"n":1}
        """;

    [Test]
    public async Task JsSdkChatRequestIsAnsweredAsTheLibraryAnswersIt()
    {
        (int status, JsonElement body, HttpResponseMessage response) = await _server.PostAsync("/v1/chat/completions", JsSdkChat);
        Assert.That(status, Is.EqualTo(200), body.ToString());
        int[] prompt = ServeTestServer.ChatIds(GemmaMessage.System("Answer briefly."), GemmaMessage.User("Debian とは何ですか？"));
        Assert.That(Content(body), Is.EqualTo(ServeTestServer.Greedy(prompt, 16)));
        Assert.That(body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(prompt.Length));
        // The fields typed clients read: message.refusal (null), usage.completion_tokens_details.
        JsonElement message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.That(message.GetProperty("refusal").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(body.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32(), Is.Zero);
        Assert.That(response.Headers.Contains("X-Gemma-Ignored-Params"), Is.False, "every field of this request is known");
    }

    /// <summary>
    /// openai 7.59.0's tool round trip: the assistant message goes back exactly as the SDK returned it
    /// (<c>content: null</c>, <c>refusal: null</c>), then a <c>tool</c> result. LangChain 1.6.0 sends the same turn
    /// with <c>content: ""</c>; Ollama-minded clients send the call without <c>type</c> and its arguments as an object.
    /// </summary>
    private const string JsSdkToolRoundTrip = """
        {"model":"gemma2-ja-demo","temperature":0,"max_tokens":20,"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false},"strict":true}},{"type":"function","function":{"name":"get_time","description":"Local time in a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20}},"required":["city"]}}}],
         "messages":[{"role":"user","content":"東京の天気は？"},{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_783b7456cc44c430cb9d1a35","type":"function","function":{"name":"get_time","arguments":"{\"city\": \"x\"}"}}]},{"role":"tool","tool_call_id":"call_783b7456cc44c430cb9d1a35","content":"{\"temp\":21,\"sky\":\"clear\"}"}]}
        """;

    [Test]
    public async Task JsSdkAndLangChainToolRoundTripsAreRenderedAsTheLibraryRendersThem()
    {
        static Microsoft.Extensions.AI.AIFunctionDeclaration Declaration(string name, string description, string schema) =>
            Microsoft.Extensions.AI.AIFunctionFactory.CreateDeclaration(name, description, JsonDocument.Parse(schema).RootElement.Clone());
        Microsoft.Extensions.AI.ChatMessage[] history =
        [
            new(Microsoft.Extensions.AI.ChatRole.User, "東京の天気は？"),
            new(Microsoft.Extensions.AI.ChatRole.Assistant, [new Microsoft.Extensions.AI.FunctionCallContent("call_783b7456cc44c430cb9d1a35", "get_time",
                new Dictionary<string, object?> { ["city"] = JsonDocument.Parse("\"x\"").RootElement.Clone() })]),
            new(Microsoft.Extensions.AI.ChatRole.Tool, [new Microsoft.Extensions.AI.FunctionResultContent("call_783b7456cc44c430cb9d1a35", JsonDocument.Parse("{\"temp\":21,\"sky\":\"clear\"}").RootElement.Clone())]),
        ];
        var options = new Microsoft.Extensions.AI.ChatOptions
        {
            Temperature = 0f, MaxOutputTokens = 20,
            Tools =
            [
                Declaration("get_weather", "Current weather in a city", """{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false}"""),
                Declaration("get_time", "Local time in a city", """{"type":"object","properties":{"city":{"type":"string","maxLength":20}},"required":["city"]}"""),
            ],
        };
        using var library = new Gemma.Core.Chat.GemmaChatClient(ServeTestServer.Model, new Gemma.Core.Chat.GemmaChatClientOptions { MaxConcurrentGenerations = 1 });
        Microsoft.Extensions.AI.ChatResponse expected = await library.GetResponseAsync(history, options);

        string[] bodies =
        [
            JsSdkToolRoundTrip,
            JsSdkToolRoundTrip.Replace("\"content\":null,\"refusal\":null,", "\"content\":\"\","),  // LangChain's form
            // No type, and the arguments as an object (Ollama's form): the same call.
            JsSdkToolRoundTrip.Replace("\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"city\\\": \\\"x\\\"}\"}", "\"function\":{\"name\":\"get_time\",\"arguments\":{\"city\": \"x\"}}"),
        ];
        Assert.That(bodies.Distinct().Count(), Is.EqualTo(3), "each variant differs from the SDK's body");
        foreach (string body in bodies)
        {
            (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", body);
            Assert.That(status, Is.EqualTo(200), json.ToString());
            Assert.That(json.GetProperty("usage").GetProperty("prompt_tokens").GetInt64(), Is.EqualTo(expected.Usage!.InputTokenCount), "the same prompt");
            JsonElement message = json.GetProperty("choices")[0].GetProperty("message");
            if (expected.Messages[^1].Contents.OfType<Microsoft.Extensions.AI.FunctionCallContent>().SingleOrDefault() is { } call)
                Assert.That(message.GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString(), Is.EqualTo(call.Name));
            else
                Assert.That(message.GetProperty("content").GetString(), Is.EqualTo(expected.Text));
        }
    }

    [Test]
    public async Task UnknownFieldsAreIgnoredAndNamedInAHeader()
    {
        (int status, JsonElement body, HttpResponseMessage response) = await _server.PostAsync("/v1/chat/completions",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"max_token\":5,\"reasoning_effort\":\"low\",\"user\":\"u\",\"\u00e9t\u00e9\":1}");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(response.Headers.GetValues("X-Gemma-Ignored-Params").Single(), Is.EqualTo("max_token, reasoning_effort, ?t?"));
    }

    [Test]
    public async Task ASystemMessageLaterJoinsTheNextUserTurnAndAGreetingGetsAUserTurnBeforeIt()
    {
        const string Later = """{"temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"apt とは"},{"role":"assistant","content":"パッケージ管理です。"},{"role":"system","content":"短く答えて。"},{"role":"user","content":"使い方は？"}]}""";
        (int status, JsonElement body, _) = await _server.PostAsync("/v1/chat/completions", Later);
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(Content(body), Is.EqualTo(ServeTestServer.Greedy(ServeTestServer.ChatIds(
            GemmaMessage.User("apt とは"), GemmaMessage.Assistant("パッケージ管理です。"), GemmaMessage.User("短く答えて。\n\n使い方は？")), 8)));

        const string Greeting = """{"temperature":0,"max_tokens":8,"messages":[{"role":"system","content":"Debian の案内係です。"},{"role":"assistant","content":"こんにちは！"},{"role":"user","content":"apt とは"}]}""";
        (status, body, _) = await _server.PostAsync("/v1/chat/completions", Greeting);
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(Content(body), Is.EqualTo(ServeTestServer.Greedy(ServeTestServer.ChatIds(
            GemmaMessage.User("Debian の案内係です。"), GemmaMessage.Assistant("こんにちは！"), GemmaMessage.User("apt とは")), 8)));

        (status, body, _) = await _server.PostAsync("/v1/chat/completions", Greeting.Replace("""{"role":"system","content":"Debian の案内係です。"},""", ""));
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(Content(body), Is.EqualTo(ServeTestServer.Greedy(ServeTestServer.ChatIds(
            GemmaMessage.User(""), GemmaMessage.Assistant("こんにちは！"), GemmaMessage.User("apt とは")), 8)));
    }

    [Test]
    public async Task TheApiAnswersWithoutV1AndAnAssistantRefusalPartIsItsText()
    {
        const string Body = """{"temperature":0,"max_tokens":6,"messages":[{"role":"user","content":"rm -rf /"},{"role":"assistant","content":[{"type":"refusal","refusal":"できません。"}]},{"role":"user","content":"apt とは"}]}""";
        string expected = ServeTestServer.Greedy(ServeTestServer.ChatIds(GemmaMessage.User("rm -rf /"), GemmaMessage.Assistant("できません。"), GemmaMessage.User("apt とは")), 6);
        foreach (string path in new[] { "/v1/chat/completions", "/chat/completions" })
        {
            (int status, JsonElement body, _) = await _server.PostAsync(path, Body);
            Assert.That(status, Is.EqualTo(200), path + " " + body);
            Assert.That(Content(body), Is.EqualTo(expected), path);
        }
        (int s2, string models) = await _server.GetAsync("/models");
        Assert.That(s2, Is.EqualTo(200), models);
        Assert.That(JsonDocument.Parse(models).RootElement.GetProperty("data")[0].GetProperty("id").GetString(), Is.EqualTo("gemma2-ja-demo"));
        (int s3, JsonElement refused, _) = await _server.PostAsync("/completions", "{\"prompt\":\"x\",\"max_tokens\":2,\"n\":3}");
        Assert.That(s3, Is.EqualTo(400), refused.ToString());
        Assert.That(refused.GetProperty("error").GetProperty("param").GetString(), Is.EqualTo("n"));
    }

    [Test]
    public async Task BrowserClientsOfAnAllowedOriginGetCorsHeadersAndOthersDoNot()
    {
        static HttpRequestMessage Request(HttpMethod method, string origin, bool key)
        {
            var r = new HttpRequestMessage(method, "/v1/chat/completions");
            r.Headers.Add("Origin", origin);
            if (method == HttpMethod.Options)
            {
                r.Headers.Add("Access-Control-Request-Method", "POST");
                r.Headers.Add("Access-Control-Request-Headers", "authorization,content-type,x-stainless-os");
            }
            else
            {
                r.Content = new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}", Encoding.UTF8, "application/json");
            }
            if (key) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ServeTestServer.Key);
            return r;
        }
        static string? Header(HttpResponseMessage r, string name) => r.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : null;

        await using ServeTestServer cors = await ServeTestServer.StartAsync(new ServerOptions { CorsOrigins = ["http://app.example"] });
        using (HttpResponseMessage preflight = await cors.Http.SendAsync(Request(HttpMethod.Options, "http://app.example", key: false)))
        {
            Assert.That((int)preflight.StatusCode, Is.EqualTo(204));
            Assert.That(Header(preflight, "Access-Control-Allow-Origin"), Is.EqualTo("http://app.example"));
            Assert.That(Header(preflight, "Access-Control-Allow-Headers"), Is.EqualTo("authorization,content-type,x-stainless-os"));
            Assert.That(Header(preflight, "Access-Control-Allow-Methods"), Does.Contain("POST"));
        }
        using (HttpResponseMessage post = await cors.Http.SendAsync(Request(HttpMethod.Post, "http://app.example", key: true)))
        {
            Assert.That((int)post.StatusCode, Is.EqualTo(200));
            Assert.That(Header(post, "Access-Control-Allow-Origin"), Is.EqualTo("http://app.example"));
        }
        using (HttpResponseMessage unauthorized = await cors.Http.SendAsync(Request(HttpMethod.Post, "http://app.example", key: false)))
        {
            Assert.That((int)unauthorized.StatusCode, Is.EqualTo(401));
            Assert.That(Header(unauthorized, "Access-Control-Allow-Origin"), Is.EqualTo("http://app.example"), "errors are readable by the page too");
        }
        using (HttpResponseMessage other = await cors.Http.SendAsync(Request(HttpMethod.Post, "http://evil.example", key: true)))
            Assert.That(Header(other, "Access-Control-Allow-Origin"), Is.Null);
        using (HttpResponseMessage byDefault = await _server.Http.SendAsync(Request(HttpMethod.Post, "http://app.example", key: true)))
            Assert.That(Header(byDefault, "Access-Control-Allow-Origin"), Is.Null, "no CORS without --cors");
    }

    [Test]
    public async Task ModelsAreRetrievedByIdAndAnUnknownIdIsModelNotFound()
    {
        (int status, string text) = await _server.GetAsync("/v1/models/gemma2-ja-demo");
        Assert.That(status, Is.EqualTo(200), text);
        JsonElement model = JsonDocument.Parse(text).RootElement;
        Assert.That(model.GetProperty("id").GetString(), Is.EqualTo("gemma2-ja-demo"));
        Assert.That(model.GetProperty("object").GetString(), Is.EqualTo("model"));
        (status, text) = await _server.GetAsync("/v1/models/gpt-4o");
        Assert.That(status, Is.EqualTo(404), text);
        Assert.That(JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString(), Is.EqualTo("model_not_found"));
    }

    [Test]
    public async Task DuplicateKeysAndRefusedFeaturesAre400s()
    {
        (string Body, string? Param, string? Code)[] cases =
        [
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"max_tokens\":3}", null, "invalid_json"),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"content\":\"y\"}]}", null, "invalid_json"),
            // Unpaired surrogate escapes: JsonDocument accepts them, reading the string throws (was a 500).
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800\"}]}", null, "invalid_json"),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\\udc00\"}", null, "invalid_json"),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"\\ud800\":1}}", null, "invalid_json"),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"functions\":[{\"name\":\"f\",\"parameters\":{}}]}", "functions", null),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"function_call\":\"auto\"}", "function_call", null),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"modalities\":[\"text\",\"audio\"],\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}}", "audio", null),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"modalities\":[\"audio\"]}", "modalities", null),
            ("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", "top_logprobs", null),
        ];
        foreach ((string body, string? param, string? code) in cases)
        {
            (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", body);
            Assert.That(status, Is.EqualTo(400), body);
            JsonElement error = json.GetProperty("error");
            Assert.That(error.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"), body);
            if (param != null) Assert.That(error.GetProperty("param").GetString(), Is.EqualTo(param), body);
            if (code != null) Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code), body);
        }
        (int ok, JsonElement okBody, _) = await _server.PostAsync("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"modalities\":[\"text\"],\"top_logprobs\":0,\"logprobs\":false}");
        Assert.That(ok, Is.EqualTo(200), okBody.ToString());
    }

    [Test]
    public async Task GzipBodiesAreDecodedAndACorruptOneIsA400()
    {
        const string Body = "{\"messages\":[{\"role\":\"user\",\"content\":\"apt の使い方\"}],\"temperature\":0,\"max_tokens\":6}";
        var packed = new MemoryStream();
        using (var gzip = new GZipStream(packed, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(Encoding.UTF8.GetBytes(Body));
        var content = new ByteArrayContent(packed.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        content.Headers.ContentEncoding.Add("gzip");
        using HttpResponseMessage response = await SendAsync(HttpMethod.Post, "/v1/chat/completions", content);
        JsonElement body = await JsonOf(response);
        Assert.That((int)response.StatusCode, Is.EqualTo(200), body.ToString());
        Assert.That(Content(body), Is.EqualTo(ServeTestServer.Greedy(ServeTestServer.ChatIds(GemmaMessage.User("apt の使い方")), 6)));

        var corrupt = new ByteArrayContent([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        corrupt.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        corrupt.Headers.ContentEncoding.Add("gzip");
        using HttpResponseMessage bad = await SendAsync(HttpMethod.Post, "/v1/chat/completions", corrupt);
        Assert.That((int)bad.StatusCode, Is.EqualTo(400), await bad.Content.ReadAsStringAsync());
        Assert.That((await JsonOf(bad)).GetProperty("error").GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"));
    }

    [Test]
    public async Task HeadOptionsAndAWrongMethodGetHttpAnswers()
    {
        using (HttpResponseMessage head = await SendAsync(HttpMethod.Head, "/health", key: false))
            Assert.That((int)head.StatusCode, Is.EqualTo(200));
        using (HttpResponseMessage head = await SendAsync(HttpMethod.Head, "/v1/models"))
            Assert.That((int)head.StatusCode, Is.EqualTo(200));
        using (HttpResponseMessage options = await SendAsync(HttpMethod.Options, "/v1/chat/completions", key: false))
        {
            Assert.That((int)options.StatusCode, Is.EqualTo(204));
            Assert.That(options.Content.Headers.Allow, Is.EquivalentTo(new[] { "POST", "OPTIONS" }));
        }
        // The model lookup route (a path parameter) answers OPTIONS too: a browser preflights models.retrieve.
        using (HttpResponseMessage options = await SendAsync(HttpMethod.Options, "/v1/models/gemma2-ja-demo", key: false))
        {
            Assert.That((int)options.StatusCode, Is.EqualTo(204));
            Assert.That(options.Content.Headers.Allow, Is.EquivalentTo(new[] { "GET", "HEAD", "OPTIONS" }));
        }
        using (HttpResponseMessage post = await SendAsync(HttpMethod.Post, "/models/gemma2-ja-demo"))
            Assert.That((int)post.StatusCode, Is.EqualTo(405));
        using HttpResponseMessage wrong = await SendAsync(HttpMethod.Get, "/v1/chat/completions");
        Assert.That((int)wrong.StatusCode, Is.EqualTo(405));
        Assert.That(wrong.Content.Headers.Allow, Is.EquivalentTo(new[] { "POST", "OPTIONS" }));
        JsonElement error = (await JsonOf(wrong)).GetProperty("error");
        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("method_not_allowed"));
    }
}
