using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using Gemma.Core.Generation;
using Gemma.Core.Model;
using Gemma.Tests.Generation;
using Gemma.Tests.Kernels;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// <see cref="Transformer.ForwardBatch"/>: rows of different sequences in one pass. Expected values come from the
/// one-sequence path (<see cref="InferenceContext"/>), which the goldens check. Run on the demo model's bf16 weights
/// (the float GEMM) and on a Q8_0 conversion of it (the int8 small-batch kernels for 2…8 decode rows, the packed
/// int8 GEMM when a prefill chunk rides along).
/// </summary>
[Category("Serve")]
public class BatchForwardTests
{
    private static Fixtures.TempDir? s_dir;
    private static GemmaModel? s_q8;

    private static GemmaModel Model => DemoModel.Instance;

    private static GemmaModel ModelOf(string weights)
    {
        if (weights == "bf16") return DemoModel.Instance;
        if (s_q8 is null)
        {
            s_dir = new Fixtures.TempDir();
            string path = Path.Combine(s_dir.Path, "demo-q8_0.gguf");
            GgufModelWriter.Convert(Fixtures.DemoModel, path, GgufOutputType.Q8_0);
            s_q8 = GemmaModel.Load(path, new GemmaModelOptions { Threads = 1, ContextLength = 1024 });
        }
        return s_q8;
    }

    [OneTimeTearDown]
    public void DisposeQ8()
    {
        s_q8?.Dispose();
        s_dir?.Dispose();
        s_q8 = null;
        s_dir = null;
    }

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
    private static List<float[]> AloneBatched(GemmaModel model, int[] prompt, int steps, int chunk)
    {
        using var batch = new BatchRows(model.Config, chunk);
        using var cache = new KvCache(model.Config, 1024, chunk);
        var logits = new List<float[]>();
        int vocab = model.Config.VocabSize;
        for (int start = 0; start < prompt.Length; start += chunk)
        {
            int n = Math.Min(chunk, prompt.Length - start);
            model.Transformer.ForwardBatch(prompt.AsSpan(start, n), Enumerable.Repeat(cache, n).ToArray(), [n - 1], batch);
        }
        for (int step = 0; step < steps; step++)
        {
            float[] row = batch.Logits.AsSpan(0, vocab).ToArray();
            logits.Add(row);
            model.Transformer.ForwardBatch([ArgMax(row)], [cache], [0], batch);
        }
        return logits;
    }

    [Test]
    public void BatchOfOneEqualsTheSequencePathBitForBit([Values("bf16", "q8_0")] string weights)
    {
        GemmaModel model = ModelOf(weights);
        int[] prompt = Prompt(1, 150);  // past the 128-position sliding window, two chunks of 64 and a remainder
        List<float[]> batched = AloneBatched(model, prompt, 40, 64);
        using InferenceContext context = model.CreateContext(1024);
        float[] logits = context.Prefill(prompt).ToArray();
        for (int step = 0; step < batched.Count; step++)
        {
            Assert.That(batched[step], Is.EqualTo(logits), $"step {step}");
            logits = context.Decode(ArgMax(logits)).ToArray();
        }
    }

    /// <summary>
    /// <paramref name="rows"/> sequences decoded together, with a further prompt's prefill chunks in the first passes
    /// (as the scheduler interleaves them) and alone after it is done, equal each sequence decoded alone bit for bit.
    /// </summary>
    [Test]
    public void SequencesDecodedTogetherMatchEachAlone([Values("bf16", "q8_0")] string weights, [Values(2, 5, 8)] int rows)
    {
        GemmaModel model = ModelOf(weights);
        const int Steps = 24, Chunk = 32;
        int vocab = model.Config.VocabSize;
        int[][] prompts = Enumerable.Range(0, rows).Select(i => Prompt(100 + i, 20 + 17 * i)).ToArray();
        List<float[]>[] alone = prompts.Select(p => AloneBatched(model, p, Steps, Chunk)).ToArray();

        using var batch = new BatchRows(model.Config, rows + Chunk, threads: 2);
        var caches = prompts.Select(_ => new KvCache(model.Config, 1024, Chunk)).ToArray();
        try
        {
            int[] next = new int[rows];
            // Prefill each prompt in its own passes (as the scheduler does, one chunk at a time).
            for (int r = 0; r < rows; r++)
            {
                for (int start = 0; start < prompts[r].Length; start += Chunk)
                {
                    int n = Math.Min(Chunk, prompts[r].Length - start);
                    model.Transformer.ForwardBatch(prompts[r].AsSpan(start, n), Enumerable.Repeat(caches[r], n).ToArray(), [n - 1], batch);
                }
                next[r] = ArgMax(batch.Logits.AsSpan(0, vocab));
            }
            int[] rowIds = Enumerable.Range(0, rows).ToArray();
            // A further prompt is prefilled in chunks inside the first decode passes (4 of them), as the scheduler
            // interleaves them; the later passes hold the decode rows alone.
            int[] intruder = Prompt(7, 100);
            using var intruderCache = new KvCache(model.Config, 1024, Chunk);
            for (int step = 1; step < Steps; step++)
            {
                int done = intruderCache.Length, extra = Math.Min(Chunk, intruder.Length - done);
                int[] tokens = [.. next, .. intruder.AsSpan(done, extra)];
                KvCache[] rowCaches = [.. caches, .. Enumerable.Repeat(intruderCache, extra)];
                model.Transformer.ForwardBatch(tokens, rowCaches, rowIds, batch);
                for (int r = 0; r < rows; r++)
                {
                    float[] row = batch.Logits.AsSpan(r * vocab, vocab).ToArray();
                    // Bit for bit: MatMul reduces every output element in the same order whatever n is (batch-invariant
                    // kernels), and attention, norms and RoPE are per row — so a request's output never depends on its batch.
                    Assert.That(row, Is.EqualTo(alone[r][step]), $"sequence {r}, step {step}");
                    next[r] = ArgMax(row);
                }
            }
        }
        finally
        {
            foreach (KvCache c in caches) c.Dispose();
        }
    }

    /// <summary>Steady-state batched decode (8 rows, 2 threads) allocates no managed memory per step.</summary>
    [Test]
    public void BatchedDecodeStepsAllocateNothing([Values("bf16", "q8_0")] string weights)
    {
        GemmaModel model = ModelOf(weights);
        const int Rows = 8;
        int vocab = model.Config.VocabSize;
        using var batch = new BatchRows(model.Config, Rows, threads: 2);
        var caches = Enumerable.Range(0, Rows).Select(_ => new KvCache(model.Config, 512, 8)).ToArray();
        try
        {
            int[] tokens = Enumerable.Range(0, Rows).Select(i => 10 + 31 * i).ToArray();
            int[] rowIds = Enumerable.Range(0, Rows).ToArray();
            void Step()
            {
                model.Transformer.ForwardBatch(tokens, caches, rowIds, batch);
                for (int r = 0; r < Rows; r++) tokens[r] = ArgMax(batch.Logits.AsSpan(r * vocab, vocab));
            }
            // Warm up (JIT tiers, thread-static scratch) past the demo model's 128-position sliding window, so the
            // measured steps overwrite ring-buffer slots.
            for (int i = 0; i < 140; i++) Step();

            long allocated = long.MaxValue, workers = long.MaxValue;
            for (int round = 0; round < 5 && (allocated != 0 || workers != 0); round++)
            {
                Dictionary<int, long> before = WorkerAllocationProbe.Probe(batch.Pool!);
                long mine = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 32; i++) Step();
                allocated = GC.GetAllocatedBytesForCurrentThread() - mine;
                Dictionary<int, long> after = WorkerAllocationProbe.Probe(batch.Pool!);
                int caller = Environment.CurrentManagedThreadId;
                var ids = before.Keys.Intersect(after.Keys).Where(id => id != caller).ToList();
                Assert.That(ids, Is.Not.Empty, "the probe reached no worker");
                workers = ids.Sum(id => after[id] - before[id]);
                TestContext.Out.WriteLine($"round {round}: {allocated} B on the calling thread, {workers} B on workers over 32 steps");
            }
            Assert.That(allocated, Is.Zero, "calling thread");
            Assert.That(workers, Is.Zero, "worker threads");
            Assert.That(caches[0].Length, Is.GreaterThanOrEqualTo(140 + 32));
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
