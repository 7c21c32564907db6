// Gemma.NET through Microsoft.Extensions.AI: the model is a singleton, the IChatClient is registered with
// ChatClientBuilder (here with one middleware that fills in default options), and the application only sees
// IChatClient. Streams a Japanese reply from the embedded demo model (a 7.6M-parameter model trained on Debian's
// Japanese manuals: it writes plausible technical prose and does not follow instructions).
using Gemma.Core;
using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

string question = args.Length > 0 ? args[0] : "Debian でパッケージをインストールするには？";
string modelDir = args.Length > 1 ? args[1] : Path.Combine(AppContext.BaseDirectory, "demo-model", "gemma2-ja-demo");

var services = new ServiceCollection();
services.AddSingleton(_ => GemmaModel.Load(modelDir, new GemmaModelOptions { Threads = 2 }));
services.AddChatClient(sp => new GemmaChatClient(sp.GetRequiredService<GemmaModel>(),
        new GemmaChatClientOptions { MaxConcurrentGenerations = 2 }))
    .ConfigureOptions(o =>
    {
        o.MaxOutputTokens ??= 64;
        o.Seed ??= 1;
    });

await using ServiceProvider provider = services.BuildServiceProvider();
IChatClient chat = provider.GetRequiredService<IChatClient>();
ChatClientMetadata? about = chat.GetService<ChatClientMetadata>();
Console.Error.WriteLine($"[{about?.ProviderName} / {about?.DefaultModelId}] {question}");

List<ChatMessage> history =
[
    new(ChatRole.System, "あなたは Debian に詳しいアシスタントです。"),
    new(ChatRole.User, question),
];
var options = new ChatOptions { ConversationId = "sample" };
var updates = new List<ChatResponseUpdate>();
await foreach (ChatResponseUpdate update in chat.GetStreamingResponseAsync(history, options))
{
    Console.Write(update.Text);
    updates.Add(update);
}
Console.WriteLine();

ChatResponse response = updates.ToChatResponse();
var stats = (GenerationStats?)updates[^1].AdditionalProperties?[GemmaChatClient.StatsKey]; // on the final update
Console.Error.WriteLine($"[finish: {response.FinishReason}, tokens in/out: {response.Usage?.InputTokenCount}/{response.Usage?.OutputTokenCount}, " +
                        $"{stats?.DecodeTokensPerSecond:F0} tok/s]");
