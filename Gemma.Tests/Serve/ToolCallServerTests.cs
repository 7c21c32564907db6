using System.ClientModel;
using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using Gemma.Core.Chat;
using Microsoft.Extensions.AI;
using NUnit.Framework;
using OpenAI;
using OpenAI.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AIChatRole = Microsoft.Extensions.AI.ChatRole;
using ChatCompletion = OpenAI.Chat.ChatCompletion;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace Gemma.Tests.Serve;

/// <summary>
/// <c>tools</c> / <c>tool_choice</c> over HTTP, driven by the official OpenAI .NET client and by
/// <c>AsIChatClient().UseFunctionInvocation()</c>. Expected calls and answers come from the library's
/// <see cref="GemmaChatClient"/> (in-process, greedy): the server must give the same call, with the same arguments,
/// in OpenAI's wire form.
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class ToolCallServerTests
{
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}""";
    private const string TimeSchema = """{"type":"object","properties":{"zone":{"enum":["JST","UTC"]}},"required":["zone"]}""";
    private const string Question = "東京の天気は？";

    private ServeTestServer _server = null!;
    private ChatClient _client = null!;
    private GemmaChatClient _library = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.StartAsync(new ServerOptions { Parallel = 2 });
        _client = new ChatClient("gemma2-ja-demo", new ApiKeyCredential(ServeTestServer.Key), new OpenAIClientOptions { Endpoint = _server.ApiBase });
        _library = new GemmaChatClient(ServeTestServer.Model, new GemmaChatClientOptions { MaxConcurrentGenerations = 1 });
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _library.Dispose();
        await _server.DisposeAsync();
    }

    private static ChatTool Weather => ChatTool.CreateFunctionTool("get_weather", "天気を調べる", BinaryData.FromString(WeatherSchema), functionSchemaIsStrict: true);
    private static ChatTool Time => ChatTool.CreateFunctionTool("get_time", "時刻を調べる", BinaryData.FromString(TimeSchema));

    private static AIFunctionDeclaration Declaration(string name, string description, string schema) =>
        AIFunctionFactory.CreateDeclaration(name, description, JsonDocument.Parse(schema).RootElement.Clone());

    private static ChatCompletionOptions Options(ChatToolChoice? choice, int maxTokens, params ChatTool[] tools)
    {
        var o = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = maxTokens, ToolChoice = choice };
        foreach (ChatTool t in tools) o.Tools.Add(t);
        return o;
    }

    /// <summary>The library's greedy reply with these tools (in-process GemmaChatClient).</summary>
    private async Task<ChatResponse> LibraryAsync(IEnumerable<AIChatMessage> messages, ChatToolMode mode, int maxTokens, bool time = false)
    {
        var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = maxTokens, ToolMode = mode, Tools = [Declaration("get_weather", "天気を調べる", WeatherSchema)] };
        if (time) options.Tools.Add(Declaration("get_time", "時刻を調べる", TimeSchema));
        return await _library.GetResponseAsync(messages, options);
    }

    private static void AssertSameArguments(string serverArguments, FunctionCallContent expected)
    {
        using JsonDocument doc = JsonDocument.Parse(serverArguments);
        Assert.That(doc.RootElement.ValueKind, Is.EqualTo(JsonValueKind.Object), serverArguments);
        var actual = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText());
        var wanted = expected.Arguments!.ToDictionary(p => p.Key, p => ((JsonElement)p.Value!).GetRawText());
        Assert.That(actual, Is.EquivalentTo(wanted), serverArguments);
    }

    [Test]
    public async Task RequiredToolChoiceGivesTheLibrarysCallInOpenAiForm()
    {
        FunctionCallContent expected = (await LibraryAsync([new(AIChatRole.User, Question)], ChatToolMode.RequireAny, 160)).Messages[^1].Contents.OfType<FunctionCallContent>().Single();

        ChatCompletion c = (await _client.CompleteChatAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateRequiredChoice(), 160, Weather))).Value;
        Assert.That(c.FinishReason, Is.EqualTo(ChatFinishReason.ToolCalls));
        Assert.That(c.Content, Is.Empty, "no text beside the call");
        Assert.That(c.ToolCalls, Has.Count.EqualTo(1));
        ChatToolCall call = c.ToolCalls[0];
        Assert.That(call.Kind, Is.EqualTo(ChatToolCallKind.Function));
        Assert.That(call.Id, Does.Match("^call_[0-9a-f]{24}$"));
        Assert.That(call.FunctionName, Is.EqualTo("get_weather"));
        AssertSameArguments(call.FunctionArguments.ToString(), expected);

        // The wire form itself: content null, arguments a JSON string.
        string body = """{"messages":[{"role":"user","content":"東京の天気は？"}],"temperature":0,"max_tokens":160,"tool_choice":"required","tools":[{"type":"function","function":{"name":"get_weather","description":"天気を調べる","parameters":""" + WeatherSchema + "}}]}";
        (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", body);
        Assert.That(status, Is.EqualTo(200));
        JsonElement message = json.GetProperty("choices")[0].GetProperty("message");
        Assert.That(message.GetProperty("content").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(message.GetProperty("role").GetString(), Is.EqualTo("assistant"));
        JsonElement wire = message.GetProperty("tool_calls")[0];
        Assert.That(wire.GetProperty("type").GetString(), Is.EqualTo("function"));
        Assert.That(wire.GetProperty("function").GetProperty("arguments").ValueKind, Is.EqualTo(JsonValueKind.String));
        Assert.That(json.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), Is.EqualTo("tool_calls"));
    }

    [Test]
    public async Task StreamedCallComesAsToolCallUpdatesWithArgumentFragments()
    {
        ChatCompletion whole = (await _client.CompleteChatAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateRequiredChoice(), 160, Weather))).Value;

        var arguments = new StringBuilder();
        var ids = new List<string>();
        var names = new List<string>();
        int fragments = 0;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateRequiredChoice(), 160, Weather)))
        {
            foreach (StreamingChatToolCallUpdate t in u.ToolCallUpdates)
            {
                Assert.That(t.Index, Is.Zero);
                if (t.ToolCallId != null) ids.Add(t.ToolCallId);
                if (t.FunctionName != null) names.Add(t.FunctionName);
                if (t.FunctionArgumentsUpdate is { } a && !a.ToMemory().IsEmpty)
                {
                    arguments.Append(a.ToString());
                    fragments++;
                }
            }
            Assert.That(u.ContentUpdate.Where(p => p.Text.Length > 0), Is.Empty, "a call is not content");
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.That(ids, Has.Count.EqualTo(1), "the id comes once, in the call's first chunk");
        Assert.That(ids[0], Does.StartWith("call_"));
        Assert.That(names, Is.EqualTo(new[] { "get_weather" }));
        Assert.That(fragments, Is.GreaterThan(1), "the arguments stream in fragments as they are generated");
        Assert.That(arguments.ToString(), Is.EqualTo(whole.ToolCalls[0].FunctionArguments.ToString()));
        Assert.That(finish, Is.EqualTo(ChatFinishReason.ToolCalls));
        Assert.That(usage?.OutputTokenCount, Is.GreaterThan(0));
    }

    [Test]
    public async Task ParallelToolCallsGivesTheLibrarysCallsStreamingAndNot()
    {
        var libraryOptions = new ChatOptions
        {
            Temperature = 0f, MaxOutputTokens = 200, ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = true,
            Tools = [Declaration("get_weather", "天気を調べる", WeatherSchema), Declaration("get_time", "時刻を調べる", TimeSchema)],
        };
        List<FunctionCallContent> expected = [.. (await _library.GetResponseAsync([new(AIChatRole.User, Question)], libraryOptions)).Messages[^1].Contents.OfType<FunctionCallContent>()];
        Assert.That(expected, Is.Not.Empty);

        var options = Options(ChatToolChoice.CreateRequiredChoice(), 200, Weather, Time);
        options.AllowParallelToolCalls = true;
        ChatCompletion c = (await _client.CompleteChatAsync([new UserChatMessage(Question)], options)).Value;
        Assert.That(c.FinishReason, Is.EqualTo(ChatFinishReason.ToolCalls));
        Assert.That(c.ToolCalls.Select(t => t.FunctionName), Is.EqualTo(expected.Select(e => e.Name)));
        for (int i = 0; i < expected.Count; i++) AssertSameArguments(c.ToolCalls[i].FunctionArguments.ToString(), expected[i]);

        var names = new SortedDictionary<int, string>();
        var arguments = new SortedDictionary<int, StringBuilder>();
        var ids = new List<(int Index, string Id)>();
        var order = new List<int>(); // the index of every tool-call update, in arrival order
        int fragments = 0;
        ChatFinishReason? finish = null;
        await foreach (StreamingChatCompletionUpdate u in _client.CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            foreach (StreamingChatToolCallUpdate t in u.ToolCallUpdates)
            {
                order.Add(t.Index);
                if (t.ToolCallId != null) ids.Add((t.Index, t.ToolCallId));
                if (t.FunctionName != null)
                {
                    Assert.That(names.ContainsKey(t.Index), Is.False, "a call's name comes once, in its first chunk");
                    names[t.Index] = t.FunctionName;
                }
                if (t.FunctionArgumentsUpdate is { } a && !a.ToMemory().IsEmpty)
                {
                    Assert.That(names.ContainsKey(t.Index), "a call's header comes before its arguments");
                    (arguments.TryGetValue(t.Index, out StringBuilder? sb) ? sb : arguments[t.Index] = new StringBuilder()).Append(a.ToString());
                    fragments++;
                }
            }
            Assert.That(u.ContentUpdate.Where(p => p.Text.Length > 0), Is.Empty, "calls are not content");
            finish ??= u.FinishReason;
        }
        Assert.That(finish, Is.EqualTo(ChatFinishReason.ToolCalls));
        Assert.That(names.Values, Is.EqualTo(c.ToolCalls.Select(t => t.FunctionName)));
        Assert.That(arguments.Values.Select(a => a.ToString()), Is.EqualTo(c.ToolCalls.Select(t => t.FunctionArguments.ToString())));
        Assert.That(ids.Select(i => i.Index), Is.EqualTo(Enumerable.Range(0, c.ToolCalls.Count)), "one id per call, indices 0, 1, …");
        Assert.That(ids.Select(i => i.Id), Is.All.StartsWith("call_"));
        Assert.That(ids.Select(i => i.Id), Is.Unique);
        Assert.That(order, Is.Ordered, "calls stream one after the other");
        // Incremental, as OpenAI streams calls: the arguments come in more fragments than there are calls (the old
        // array form sent each call's arguments in one piece once the whole array was complete).
        Assert.That(fragments, Is.GreaterThan(c.ToolCalls.Count), "the arguments stream in fragments as they are generated");

        // AsIChatClient() (M.E.AI's OpenAI adapter) assembles the streamed calls into the calls it gets whole. (It sends
        // the parameter schemas in its own shape, so the prompt — and the calls — may differ from the library's above.)
        var aiOptions = new ChatOptions
        {
            Temperature = 0f, MaxOutputTokens = 200, ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = true,
            Tools = [Declaration("get_weather", "天気を調べる", WeatherSchema), Declaration("get_time", "時刻を調べる", TimeSchema)],
        };
        IChatClient ai = _client.AsIChatClient();
        List<FunctionCallContent> whole = [.. (await ai.GetResponseAsync([new(AIChatRole.User, Question)], aiOptions.Clone())).Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()];
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate u in ai.GetStreamingResponseAsync([new(AIChatRole.User, Question)], aiOptions.Clone())) updates.Add(u);
        List<FunctionCallContent> streamed = [.. updates.ToChatResponse().Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()];
        Assert.That(whole, Is.Not.Empty);
        Assert.That(streamed.Select(f => f.Name), Is.EqualTo(whole.Select(e => e.Name)));
        Assert.That(streamed.Select(f => JsonSerializer.Serialize(f.Arguments)), Is.EqualTo(whole.Select(e => JsonSerializer.Serialize(e.Arguments))));
    }

    [Test]
    public async Task ASpecificFunctionChoiceCallsThatFunction()
    {
        FunctionCallContent expected = (await LibraryAsync([new(AIChatRole.User, Question)], ChatToolMode.RequireSpecific("get_time"), 64, time: true))
            .Messages[^1].Contents.OfType<FunctionCallContent>().Single();
        ChatCompletion c = (await _client.CompleteChatAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateFunctionChoice("get_time"), 64, Weather, Time))).Value;
        Assert.That(c.FinishReason, Is.EqualTo(ChatFinishReason.ToolCalls));
        Assert.That(c.ToolCalls.Single().FunctionName, Is.EqualTo("get_time"));
        AssertSameArguments(c.ToolCalls[0].FunctionArguments.ToString(), expected);
        Assert.That(JsonDocument.Parse(c.ToolCalls[0].FunctionArguments.ToString()).RootElement.GetProperty("zone").GetString(), Is.AnyOf("JST", "UTC"));
    }

    [Test]
    public async Task NoneAndAutoMatchTheLibrary()
    {
        // none: the tools are not described, so the reply is the plain chat reply.
        ChatCompletion none = (await _client.CompleteChatAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateNoneChoice(), 16, Weather))).Value;
        Assert.That(none.ToolCalls, Is.Empty);
        Assert.That(none.Content[0].Text, Is.EqualTo(ServeTestServer.Greedy(ServeTestServer.ChatIds(Core.Tokenization.GemmaChatMessage.User(Question)), 16)));

        // auto: a call or text, whichever the library's client gives for the same prompt.
        foreach (string q in new[] { Question, "こんにちは" })
        {
            ChatResponse expected = await LibraryAsync([new(AIChatRole.User, q)], ChatToolMode.Auto, 40);
            ChatCompletion auto = (await _client.CompleteChatAsync([new UserChatMessage(q)], Options(ChatToolChoice.CreateAutoChoice(), 40, Weather))).Value;
            FunctionCallContent? call = expected.Messages[^1].Contents.OfType<FunctionCallContent>().SingleOrDefault();
            if (call != null)
            {
                Assert.That(auto.FinishReason, Is.EqualTo(ChatFinishReason.ToolCalls), q);
                AssertSameArguments(auto.ToolCalls.Single().FunctionArguments.ToString(), call);
            }
            else
            {
                Assert.That(auto.ToolCalls, Is.Empty, q);
                Assert.That(auto.Content[0].Text, Is.EqualTo(expected.Text), q);
                Assert.That(auto.Content[0].Text, Does.Not.StartWith("{"));
            }
        }
    }

    [Test]
    public async Task HistoryWithCallsAndToolResultsIsRenderedAsTheLibraryRendersIt()
    {
        var args = new Dictionary<string, object?> { ["city"] = JsonDocument.Parse("\"大阪\"").RootElement.Clone(), ["days"] = JsonDocument.Parse("2").RootElement.Clone() };
        AIChatMessage[] history =
        [
            new(AIChatRole.User, "大阪の天気は？"),
            new(AIChatRole.Assistant, [new FunctionCallContent("call_1", "get_weather", args)]),
            new(AIChatRole.Tool, [new FunctionResultContent("call_1", JsonDocument.Parse("{\"forecast\":\"晴れ\"}").RootElement.Clone())]),
        ];
        ChatResponse expected = await LibraryAsync(history, ChatToolMode.Auto, 24);

        ChatCompletion c = (await _client.CompleteChatAsync(
        [
            new UserChatMessage("大阪の天気は？"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("{\"city\":\"大阪\",\"days\":2}"))]),
            new ToolChatMessage("call_1", "{\"forecast\":\"晴れ\"}"),
        ], Options(ChatToolChoice.CreateAutoChoice(), 24, Weather))).Value;
        if (expected.Messages[^1].Contents.OfType<FunctionCallContent>().SingleOrDefault() is { } call)
            AssertSameArguments(c.ToolCalls.Single().FunctionArguments.ToString(), call);
        else
            Assert.That(c.Content[0].Text, Is.EqualTo(expected.Text));
        Assert.That(c.Usage.InputTokenCount, Is.EqualTo(expected.Usage!.InputTokenCount), "the same prompt");
    }

    [Test]
    public async Task UseFunctionInvocationRoundTripsThroughTheServerAsInProcess([Values(false, true)] bool streaming)
    {
        int invoked = 0;
        // M.E.AI's OpenAI client sends a function's parameters in its own shape (type, required, properties,
        // additionalProperties: false); the function declares that shape itself, so in-process and over-HTTP prompts match.
        AIFunction weather = new DeclaredAs(
            AIFunctionFactory.Create((string city, int days) => { invoked++; return $"{city}: {days} 日間 晴れ"; }, "get_weather", "天気を調べる"),
            """{"type":"object","required":["city","days"],"properties":{"city":{"type":"string"},"days":{"type":"integer"}},"additionalProperties":false}""");
        var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = 160, Tools = [weather], ToolMode = ChatToolMode.RequireAny };
        AIChatMessage[] question = [new(AIChatRole.User, Question)];

        IChatClient inProcess = new ChatClientBuilder(_library).UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3).Build();
        ChatResponse expected = await inProcess.GetResponseAsync(question, options.Clone());
        int expectedInvocations = invoked;
        invoked = 0;

        IChatClient overHttp = new ChatClientBuilder(_client.AsIChatClient()).UseFunctionInvocation(configure: f => f.MaximumIterationsPerRequest = 3).Build();
        ChatResponse actual;
        if (streaming)
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (ChatResponseUpdate u in overHttp.GetStreamingResponseAsync(question, options.Clone())) updates.Add(u);
            actual = updates.ToChatResponse();
        }
        else
        {
            actual = await overHttp.GetResponseAsync(question, options.Clone());
        }

        Assert.That(expectedInvocations, Is.GreaterThanOrEqualTo(1));
        Assert.That(invoked, Is.EqualTo(expectedInvocations), "as many calls over HTTP as in-process");
        List<AIContent> contents = [.. actual.Messages.SelectMany(m => m.Contents)];
        Assert.That(contents.OfType<FunctionCallContent>().Select(c => c.Name), Is.All.EqualTo("get_weather"));
        Assert.That(contents.OfType<FunctionResultContent>().Count(), Is.EqualTo(invoked));
        Assert.That(actual.Messages[^1].Role, Is.EqualTo(AIChatRole.Assistant));
        Assert.That(actual.Text, Is.EqualTo(expected.Text), "the final answer (after the tool result) is the library's");
        var expectedArgs = expected.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(c => JsonSerializer.Serialize(c.Arguments)).ToList();
        var actualArgs = contents.OfType<FunctionCallContent>().Select(c => JsonSerializer.Serialize(c.Arguments)).ToList();
        Assert.That(actualArgs, Is.EqualTo(expectedArgs));
    }

    /// <summary>A function with the parameter schema given (as a client sends it).</summary>
    private sealed class DeclaredAs(AIFunction inner, string schema) : DelegatingAIFunction(inner)
    {
        public override JsonElement JsonSchema { get; } = JsonDocument.Parse(schema).RootElement.Clone();
    }

    private static string Body(string tools, string? extra = null, string messages = """[{"role":"user","content":"x"}]""") =>
        $$"""{"messages":{{messages}},"max_tokens":4,"tools":{{tools}}{{(extra == null ? "" : "," + extra)}}}""";

    private const string F = """{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}}}}}""";

    private static readonly (string Body, string Param, string? Says)[] BadTools =
    [
        (Body("""[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"bogus"}}}}}]"""), "tools[0].function.parameters", "bogus"),
        (Body("""[""" + F + """,{"type":"function","function":{"name":"g","parameters":{"type":"object","properties":{"a":{"not":{"type":"string"}}}}}}]"""), "tools[1].function.parameters", "'not'"),
        (Body("[" + F + "," + F + "]"), "tools[1].function.name", "Duplicate"),
        (Body("[" + F + "]", "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"), "tool_choice", "'nope'"),
        (Body("[" + F + "]", "\"tool_choice\":\"sometimes\""), "tool_choice", null),
        (Body("[]", "\"tool_choice\":\"required\""), "tool_choice", null),
        (Body("""[{"type":"code_interpreter"}]"""), "tools[0].type", null),
        (Body("""[{"type":"function","function":{"name":"has space"}}]"""), "tools[0].function.name", null),
        (Body("""[{"type":"function","function":{"name":"f","parameters":"object"}}]"""), "tools[0].function.parameters", null),
        (Body("""[{"type":"function","function":{"name":"f","strict":"yes"}}]"""), "tools[0].function.strict", null),
        (Body("{}"), "tools", null),
        (Body("[" + F + "]", "\"parallel_tool_calls\":1"), "parallel_tool_calls", null),
        (Body("[" + F + "]", "\"response_format\":{\"type\":\"json_object\"}"), "response_format", null),
        (Body("[" + F + "]", null, """[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{oops"}}]},{"role":"tool","tool_call_id":"c1","content":"1"}]"""),
            "messages[1].tool_calls[0].function.arguments", null),
        (Body("[" + F + "]", null, """[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c9","content":"1"}]"""), "messages[1].tool_call_id", "'c9'"),
        (Body("[" + F + "]", null, """[{"role":"user","content":"x"},{"role":"assistant","content":null}]"""), "messages[1].content", null),
        (Body("[" + F + "]", null, """[{"role":"user","content":"x"},{"role":"function","name":"f","content":"1"}]"""), "messages[1].role", null),
    ];

    [Test]
    public async Task BadToolDefinitionsAreOpenAiErrorsAndTheServerKeepsServing()
    {
        foreach ((string body, string param, string? says) in BadTools)
        {
            (int status, JsonElement json, _) = await _server.PostAsync("/v1/chat/completions", body);
            Assert.That(status, Is.EqualTo(400), body);
            JsonElement error = json.GetProperty("error");
            Assert.That(error.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"), body);
            Assert.That(error.GetProperty("param").GetString(), Is.EqualTo(param), body);
            if (says != null) Assert.That(error.GetProperty("message").GetString(), Does.Contain(says), body);
        }
        ChatCompletion ok = (await _client.CompleteChatAsync([new UserChatMessage(Question)], Options(ChatToolChoice.CreateRequiredChoice(), 160, Weather))).Value;
        Assert.That(ok.FinishReason, Is.EqualTo(ChatFinishReason.ToolCalls));
    }
}
