using System.Diagnostics;
using System.Numerics.Tensors;
using Gemma.Core;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Long runs far past the sliding window. The model under test uses a small prefill chunk, so its sliding layers keep
/// a ring of only <c>window + chunk − 1</c> slots that wraps many times; the reference is a second load of the same
/// files with a chunk as long as the context, whose sliding layers never wrap (the mask alone does the windowing).
/// At checkpoints the cached decode logits must equal a from-scratch prefill of the whole sequence on the reference
/// within 1e-3 (see <c>Tolerance</c>), and the decoding thread must allocate no managed memory per token once the sliding layers are full.
/// </summary>
[Category("Reliability")]
public class SoakTests
{
    // Decode (one token: row-at-a-time matmul) and the reference prefill (4-token register tiles) sum in different
    // orders, so they differ by float32 rounding — up to ~1e-4 on gemma2-micro, whose soft-capped random weights make
    // logits sensitive. A ring-buffer defect (a stale or missing key) moves logits by ~1, far above either bound.
    private const float Tolerance = 1e-3f;

    /// <summary>Greedy decode of <paramref name="tokens"/> tokens; returns the memory curve for the report.</summary>
    private static void Soak(string dir, int context, int chunk, int[] prompt, int tokens, int checkEvery)
    {
        using var model = GemmaModel.Load(dir, new GemmaModelOptions { Threads = 1, ContextLength = context, PrefillChunk = chunk });
        using var reference = GemmaModel.Load(dir, new GemmaModelOptions { Threads = 1, ContextLength = context, PrefillChunk = context });
        int window = model.Config.SlidingWindow!.Value;
        Assert.That(prompt.Length + tokens, Is.GreaterThanOrEqualTo(3 * window), "at least three windows");
        using var ctx = model.CreateContext();
        using var refCtx = reference.CreateContext();
        int sliding = Array.IndexOf(model.Config.LayerTypes, Core.Config.AttentionKind.Sliding);
        Assert.That(ctx.Cache.Capacity(sliding), Is.EqualTo(window + chunk - 1), "the model under test has a small ring");
        Assert.That(refCtx.Cache.Capacity(sliding), Is.EqualTo(context), "the reference has no ring");
        TestContext.Out.WriteLine($"{Path.GetFileName(dir)}: window {window}, ring {ctx.Cache.Capacity(sliding)} slots, {prompt.Length} prompt + {tokens} generated tokens, KV cache reserved {ctx.Cache.ReservedBytes:N0} B");

        var sequence = new List<int>(prompt);
        float[] logits = ctx.Prefill(prompt).ToArray();
        long steadyBytes = 0;
        int steadyTokens = 0, checkpoints = 0, allocatingSteps = 0;
        float worst = 0;
        for (int step = 1; step <= tokens; step++)
        {
            int next = TensorPrimitives.IndexOfMax(logits);
            sequence.Add(next);
            long before = GC.GetAllocatedBytesForCurrentThread();
            ReadOnlySpan<float> decoded = ctx.Decode(next);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (sequence.Count > ctx.Cache.Capacity(sliding) + 8) // ring full, JIT warm
            {
                steadyBytes += allocated;
                steadyTokens++;
                if (allocated != 0) allocatingSteps++;
            }
            if (allocated != 0) TestContext.Out.WriteLine($"  position {sequence.Count}: {allocated} B");
            decoded.CopyTo(logits);

            if (step % checkEvery == 0 || step == tokens)
            {
                refCtx.Reset();
                ReadOnlySpan<float> expected = refCtx.Prefill(sequence.ToArray());
                float diff = 0;
                for (int i = 0; i < logits.Length; i++) diff = Math.Max(diff, Math.Abs(logits[i] - expected[i]));
                worst = Math.Max(worst, diff);
                checkpoints++;
                using var process = Process.GetCurrentProcess();
                TestContext.Out.WriteLine($"  position {sequence.Count,4}: max |decode − prefill| = {diff:E2}; managed heap {GC.GetTotalMemory(false) / 1024,7:N0} KiB; working set {process.WorkingSet64 / 1024,8:N0} KiB");
                Assert.That(diff, Is.LessThanOrEqualTo(Tolerance), $"position {sequence.Count}: cached decode differs from the reference prefill");
            }
        }
        TestContext.Out.WriteLine($"  {checkpoints} checkpoints, worst difference {worst:E2}; {steadyBytes} managed bytes allocated in {allocatingSteps} of {steadyTokens} steady-state tokens");
        Assert.That(steadyTokens, Is.GreaterThan(2 * window), "the steady state was measured over more than two windows");
        // A thread's attention-score buffer may grow once, to the whole context, when this context is longer than the
        // ones the thread served before (other tests run on the same thread); nothing else may allocate.
        Assert.That(allocatingSteps, Is.LessThanOrEqualTo(1), "no managed allocation per token once the sliding layers are full");
        Assert.That(steadyBytes, Is.LessThanOrEqualTo(4L * context + 64), "at most one score buffer for the context");
        Assert.That(ctx.Position, Is.EqualTo(prompt.Length + tokens));

        // Without the reference: decode on to the end of the context and watch the process. The sliding layers are
        // full; only the global layers' reserved pages are still being touched (kv_heads × head_dim × 4 B × K and V
        // per global layer and position).
        int globals = model.Config.LayerTypes.Count(t => t == Core.Config.AttentionKind.Full);
        long expectedKv = (long)globals * 2 * model.Config.NumKvHeads * model.Config.HeadDim * 4 * (context - ctx.Position);
        GC.Collect();
        long heap0 = GC.GetTotalMemory(true), ws0 = Environment.WorkingSet;
        int from = ctx.Position;
        int token = TensorPrimitives.IndexOfMax(logits);
        while (ctx.Position < context) token = TensorPrimitives.IndexOfMax(ctx.Decode(token));
        GC.Collect();
        long heapGrowth = GC.GetTotalMemory(true) - heap0, wsGrowth = Environment.WorkingSet - ws0;
        TestContext.Out.WriteLine($"  positions {from} → {ctx.Position} without the reference: managed heap {heapGrowth / 1024:+#,0;-#,0;0} KiB, " +
                                  $"working set {wsGrowth / 1024:+#,0;-#,0;0} KiB (global-layer KV pages touched: {expectedKv / 1024:N0} KiB)");
        Assert.That(wsGrowth, Is.LessThan(expectedKv + (16L << 20)), "the working set grows by little more than the global layers' cache pages");
    }

    [Test]
    public void DemoModelFourWindowsPastTheSlidingWindow()
    {
        // Window 128: the demo prompt plus generated tokens = 520 positions, over four windows; chunk 16 -> a ring of 143 slots.
        int[] prompt = GoldenCase.Demo(0).PromptIds;
        Soak(Fixtures.DemoModel, context: 1024, chunk: 16, prompt, tokens: 520 - prompt.Length, checkEvery: 50);
    }

    [Test]
    public void MicroFixtureThirtyWindowsPastTheSlidingWindow()
    {
        // Window 8, 256 positions: thirty windows; chunk 4 -> a ring of 11 slots that wraps 22 times. Checked every 5 tokens.
        Soak(Fixtures.Golden("gemma2-micro"), context: 256, chunk: 4, prompt: [2, 17, 33, 101, 7], tokens: 250, checkEvery: 5);
    }
}
