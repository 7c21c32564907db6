using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Tests.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>Steady-state decode (forward through the KV cache + sampling) allocates no managed memory per token.</summary>
[Category("Model")]
public class DecodeAllocationTests
{
    [TestCase(1, KvCacheType.Float32, "bf16")]
    [TestCase(2, KvCacheType.Float32, "bf16")]
    [TestCase(2, KvCacheType.Float16, "bf16")]
    [TestCase(2, KvCacheType.Float32, "q4_k_m")]   // the 4/6-bit kernels in place, Q6_K embedding rows decoded per token
    public void ThirtyTwoDecodeStepsAllocateNothing(int threads, KvCacheType kv, string weights)
    {
        using var dir = new Fixtures.TempDir();
        string path = Fixtures.DemoModel;
        if (weights == "q4_k_m")
        {
            path = Path.Combine(dir.Path, "demo-q4_k_m.gguf");
            Gemma.Core.Formats.Gguf.GgufModelWriter.Convert(Fixtures.DemoModel, path, Gemma.Core.Formats.Gguf.GgufOutputType.Q4_K_M);
        }
        using var model = GemmaModel.Load(path, new GemmaModelOptions { Threads = threads, ContextLength = 512, KvCache = kv });
        using var ctx = model.CreateContext();
        var sampler = new Sampler(new SamplingOptions { Seed = 5, RepetitionPenalty = 1.1f }, model.Config.VocabSize);
        int[] history = new int[512];
        int length = 0;
        foreach (int id in GoldenCase.Demo(0).PromptIds) history[length++] = id;
        ReadOnlySpan<float> logits = ctx.Prefill(history.AsSpan(0, length));
        for (int i = 0; i < 40; i++) logits = Step(ctx, sampler, history, ref length, logits); // warm up: JIT tiers, thread-static scratch

        // The decoding thread is measured directly, the pool's workers through a probe item on each of them.
        // (Process-wide totals are not used: the test host's own threads allocate in the background.)
        long allocated = long.MaxValue, workers = long.MaxValue;
        for (int round = 0; round < 5 && (allocated != 0 || workers != 0); round++)
        {
            Dictionary<int, long>? before = ctx.Pool is { } p0 ? WorkerAllocationProbe.Probe(p0) : null;
            long mine = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 32; i++) logits = Step(ctx, sampler, history, ref length, logits);
            allocated = GC.GetAllocatedBytesForCurrentThread() - mine;
            workers = 0;
            if (ctx.Pool is { } p1)
            {
                Dictionary<int, long> after = WorkerAllocationProbe.Probe(p1);
                int caller = Environment.CurrentManagedThreadId;
                var ids = before!.Keys.Intersect(after.Keys).Where(id => id != caller).ToList();
                Assert.That(ids, Is.Not.Empty, "the probe reached no worker");
                workers = ids.Sum(id => after[id] - before[id]);
            }
            TestContext.Out.WriteLine($"round {round}: {allocated} B on the decoding thread, {workers} B on workers over 32 tokens");
        }
        Assert.That(allocated, Is.Zero, "decoding thread");
        Assert.That(workers, Is.Zero, "worker threads");
    }

    private static ReadOnlySpan<float> Step(InferenceContext ctx, Sampler sampler, int[] history, scoped ref int length, ReadOnlySpan<float> logits)
    {
        int next = sampler.Sample(logits, history.AsSpan(0, length));
        history[length++] = next;
        return ctx.Decode(next);
    }
}
