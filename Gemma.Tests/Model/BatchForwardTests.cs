using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Model;
using Gemma.Tests.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// <see cref="Transformer.ForwardBatch"/>: rows of different sequences in one pass. Expected values come from the
/// one-sequence path (<see cref="InferenceContext"/>), which the goldens check.
/// </summary>
[Category("Serve")]
public class BatchForwardTests
{
    private static GemmaModel Model => DemoModel.Instance;

    private static int[] Prompt(int seed, int length)
    {
        var rng = new Random(seed);
        var ids = new int[length];
        ids[0] = 2;
        for (int i = 1; i < length; i++) ids[i] = rng.Next(10, Model.Config.VocabSize);
        return ids;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>Greedy decode of one sequence through the batched path alone; logits of every step.</summary>
    private static List<float[]> AloneBatched(int[] prompt, int steps, int chunk)
    {
        using var batch = new BatchRows(Model.Config, chunk);
        using var cache = new KvCache(Model.Config, 1024, chunk);
        var logits = new List<float[]>();
        int vocab = Model.Config.VocabSize;
        for (int start = 0; start < prompt.Length; start += chunk)
        {
            int n = Math.Min(chunk, prompt.Length - start);
            Model.Transformer.ForwardBatch(prompt.AsSpan(start, n), Enumerable.Repeat(cache, n).ToArray(), [n - 1], batch);
        }
        for (int step = 0; step < steps; step++)
        {
            float[] row = batch.Logits.AsSpan(0, vocab).ToArray();
            logits.Add(row);
            Model.Transformer.ForwardBatch([ArgMax(row)], [cache], [0], batch);
        }
        return logits;
    }

    private static float MaxAbsDiff(float[] a, float[] b)
    {
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [Test]
    public void BatchOfOneEqualsTheSequencePathBitForBit()
    {
        int[] prompt = Prompt(1, 150);  // past the 128-position sliding window, two chunks of 64 and a remainder
        List<float[]> batched = AloneBatched(prompt, 40, 64);
        using InferenceContext context = Model.CreateContext(1024);
        float[] logits = context.Prefill(prompt).ToArray();
        for (int step = 0; step < batched.Count; step++)
        {
            Assert.That(batched[step], Is.EqualTo(logits), $"step {step}");
            logits = context.Decode(ArgMax(logits)).ToArray();
        }
    }

    [Test]
    public void EightSequencesDecodedTogetherMatchEachAlone()
    {
        const int Rows = 8, Steps = 24, Chunk = 32;
        int vocab = Model.Config.VocabSize;
        int[][] prompts = Enumerable.Range(0, Rows).Select(i => Prompt(100 + i, 20 + 17 * i)).ToArray();
        List<float[]>[] alone = prompts.Select(p => AloneBatched(p, Steps, Chunk)).ToArray();

        using var batch = new BatchRows(Model.Config, Rows + Chunk);
        var caches = prompts.Select(_ => new KvCache(Model.Config, 1024, Chunk)).ToArray();
        try
        {
            int[] next = new int[Rows];
            // Prefill each prompt in its own passes (as the scheduler does, one chunk at a time).
            for (int r = 0; r < Rows; r++)
            {
                for (int start = 0; start < prompts[r].Length; start += Chunk)
                {
                    int n = Math.Min(Chunk, prompts[r].Length - start);
                    Model.Transformer.ForwardBatch(prompts[r].AsSpan(start, n), Enumerable.Repeat(caches[r], n).ToArray(), [n - 1], batch);
                }
                next[r] = ArgMax(alone[r][0]);
            }
            int[] rows = Enumerable.Range(0, Rows).ToArray();
            for (int step = 1; step < Steps; step++)
            {
                Model.Transformer.ForwardBatch(next, caches, rows, batch);
                for (int r = 0; r < Rows; r++)
                {
                    float[] row = batch.Logits.AsSpan(r * vocab, vocab).ToArray();
                    // Within float32 rounding, not bit for bit: the current MatMul reduces a row with a 4-token tile
                    // kernel when n >= 4 and a 1-token kernel otherwise (different summation order). Bit-exactness
                    // waits for the batch-invariant GEMM (branch matmul); see docs/server.md.
                    Assert.That(MaxAbsDiff(row, alone[r][step]), Is.LessThan(1e-4f), $"sequence {r}, step {step}");
                    next[r] = ArgMax(alone[r][step]);  // follow the solo run's tokens so a near-tie cannot fork the paths
                }
            }
        }
        finally
        {
            foreach (KvCache c in caches) c.Dispose();
        }
    }

    [Test]
    public void RejectsMoreRowsOfOneCacheThanItsChunk()
    {
        using var batch = new BatchRows(Model.Config, 16);
        using var cache = new KvCache(Model.Config, 64, 4);
        Assert.Throws<ArgumentException>(() => Model.Transformer.ForwardBatch(new int[5], Enumerable.Repeat(cache, 5).ToArray(), [], batch));
        Assert.That(cache.Length, Is.Zero);
    }

    [Test]
    public void RejectsAPositionPastTheContext()
    {
        using var batch = new BatchRows(Model.Config, 4);
        using var cache = new KvCache(Model.Config, 2, 4);
        Model.Transformer.ForwardBatch([2, 10], [cache, cache], [1], batch);
        Assert.Throws<GemmaException>(() => Model.Transformer.ForwardBatch([10], [cache], [0], batch));
        Assert.That(cache.Length, Is.EqualTo(2));
    }
}
