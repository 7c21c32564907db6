using Gemma.Cli.Serve;
using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Serve;

/// <summary>
/// Zero allocations per generated token on the scheduler thread in steady state: a decode step in which every slot
/// decodes one token (the batched forward pass, sampling, detokenizing, stop-sequence matching, handing the text to
/// the reader) allocates nothing. What the HTTP side does with the text (one string and one JSON chunk per wake-up)
/// is not counted. Worker threads of the forward pass run struct work items (the batched-forward tests hold
/// ForwardBatch itself to zero).
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class SchedulerAllocationTests
{
    [TestCase(1)]
    [TestCase(2)]
    public async Task SteadyDecodeStepsAllocateNothing(int threads)
    {
        var metrics = new ServerMetrics();
        using var scheduler = new BatchScheduler(ServeTestServer.Model, new ServerOptions { Parallel = 4, Threads = threads, ContextLength = 1024 }, metrics);
        Dictionary<int, float> banEnd = ServeTestServer.BanEnd();
        SamplingOptions[] options =
        [
            SamplingOptions.Greedy with { MaxTokens = 400, LogitBias = banEnd },
            SamplingOptions.Greedy with { MaxTokens = 400, LogitBias = banEnd, StopSequences = ["§§§", "@@"] },  // held-back text path
            new SamplingOptions { MaxTokens = 400, LogitBias = banEnd, Seed = 3, Temperature = 0.9f, TopK = 40, TopP = 0.9f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.5f },
            SamplingOptions.Greedy with { MaxTokens = 400, LogitBias = banEnd, FrequencyPenalty = 0.3f },
        ];
        string[] questions = ["Debian とは", "パッケージ", "カーネルの更新", "ネットワーク"];
        var requests = questions.Select((q, i) => new GenerationRequest(ServeTestServer.ChatIds(Core.Tokenization.GemmaChatMessage.User(q)), options[i], CancellationToken.None, TimeSpan.FromMinutes(5))).ToArray();
        foreach (GenerationRequest r in requests) Assert.That(scheduler.TryEnqueue(r), Is.True);
        // Readers as the HTTP side has them: awaiting each wake-up and taking the text.
        var texts = requests.Select(r => Task.Run(async () =>
        {
            var sb = new System.Text.StringBuilder();
            await foreach (string piece in r.ReadTextAsync(CancellationToken.None)) sb.Append(piece);
            return sb.ToString();
        })).ToArray();

        await WaitForSteps(metrics, 40);  // warm-up: buffers grow to their size, code is jitted
        long bytes = metrics.SteadyStepBytes.Value;
        long steps = metrics.SteadySteps.Value;
        await WaitForSteps(metrics, steps + 150);
        long allocated = metrics.SteadyStepBytes.Value - bytes;
        long measured = metrics.SteadySteps.Value - steps;

        foreach (GenerationResult result in await Task.WhenAll(requests.Select(r => r.Completion)))
            Assert.That(result.Stop, Is.EqualTo(StopKind.Length));
        foreach (string text in await Task.WhenAll(texts)) Assert.That(text, Is.Not.Empty);
        Assert.That(measured, Is.GreaterThanOrEqualTo(150));
        Assert.That(allocated, Is.Zero, $"{allocated} bytes in {measured} steady decode steps of 4 streams ({(double)allocated / (4 * measured):F1} B per token)");
    }

    private static async Task WaitForSteps(ServerMetrics metrics, long steps)
    {
        DateTime end = DateTime.UtcNow.AddSeconds(60);
        while (metrics.SteadySteps.Value < steps)
        {
            if (DateTime.UtcNow > end) Assert.Fail($"Only {metrics.SteadySteps.Value} steady steps (waited for {steps}).");
            await Task.Delay(5);
        }
    }
}
