using Gemma.Core;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// One worker pool per model, shared by every context: concurrent contexts must neither deadlock nor disturb each
/// other's results (each kernel computes every output element inside one work item, so results do not depend on which
/// thread ran it — concurrent runs are compared bit for bit with runs alone).
/// </summary>
[Category("Model")]
public class SharedWorkerPoolTests
{
    private static int[] Prompt(int seed, GemmaModel model)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, 12).Select(i => i == 0 ? model.Config.BosTokenId : random.Next(3, model.Config.VocabSize)).ToArray();
    }

    // Prefill in chunks of 5 (several pool calls per chunk, attention over several tokens) then 20 greedy steps.
    private static float[][] Run(GemmaModel model, int[] prompt)
    {
        using var ctx = model.CreateContext(64);
        var outputs = new List<float[]> { ctx.Prefill(prompt).ToArray() };
        int next = Array.IndexOf(outputs[0], outputs[0].Max());
        for (int i = 0; i < 20; i++)
        {
            float[] logits = ctx.Decode(next).ToArray();
            outputs.Add(logits);
            next = Array.IndexOf(logits, logits.Max());
        }
        return outputs.ToArray();
    }

    [Test]
    public void ContextsShareTheModelsPool()
    {
        using var model = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = 2, ContextLength = 64 });
        using var a = model.CreateContext();
        using var b = model.CreateContext();
        Assert.That(a.Pool, Is.Not.Null);
        Assert.That(b.Pool, Is.SameAs(a.Pool));
        Assert.That(model.Pool, Is.SameAs(a.Pool));
        a.Dispose(); // a context's end must not stop the shared threads
        Assert.That(b.Decode(model.Config.BosTokenId).Length, Is.EqualTo(model.Config.VocabSize));

        using var single = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = 1, ContextLength = 64 });
        using var c = single.CreateContext();
        Assert.That(c.Pool, Is.Null);
    }

    [TestCase(2, KvCacheType.Float32)]
    [TestCase(3, KvCacheType.Float16)]
    public void ConcurrentContextsGiveTheResultsTheyGiveAlone(int threads, KvCacheType kv)
    {
        using var model = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = threads, ContextLength = 64, PrefillChunk = 5, KvCache = kv });
        const int contexts = 4;
        int[][] prompts = Enumerable.Range(0, contexts).Select(i => Prompt(100 + i, model)).ToArray();
        float[][][] alone = prompts.Select(p => Run(model, p)).ToArray();

        for (int round = 0; round < 3; round++)
        {
            var together = new float[contexts][][];
            using var start = new Barrier(contexts);
            Task[] tasks = Enumerable.Range(0, contexts).Select(i => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                together[i] = Run(model, prompts[i]);
            }, TaskCreationOptions.LongRunning)).ToArray();
            Assert.That(Task.WaitAll(tasks, TimeSpan.FromSeconds(60)), Is.True, "concurrent contexts deadlocked");
            for (int i = 0; i < contexts; i++)
                for (int step = 0; step < alone[i].Length; step++)
                    Assert.That(together[i][step], Is.EqualTo(alone[i][step]).AsCollection, $"round {round}, context {i}, step {step}");
        }
    }
}
