using Gemma.Core;
using Gemma.Core.Model;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary><c>gemma bench --profile</c>'s timer: it must not change results and must see every phase of a pass.</summary>
[Category("Model")]
public class StepProfileTests
{
    [TestCase(1)]
    [TestCase(2)]
    public void ProfiledPassesGiveTheSameLogitsAndTimeEveryPhase(int threads)
    {
        using var model = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = threads, ContextLength = 64 });
        int[] prompt = GoldenCase.Demo(0).PromptIds;
        // The plain run first: the pool (shared by the model's contexts) counts every call while a profile is attached.
        using var plain = model.CreateContext();
        var expected = new List<float[]> { plain.Prefill(prompt).ToArray() };
        for (int i = 0; i < 4; i++) expected.Add(plain.Decode(100 + i).ToArray());

        using var timed = model.CreateContext();
        using var profile = new StepProfile(timed.Pool);
        timed.State.Profile = profile;
        profile.Start();
        Assert.That(timed.Prefill(prompt).ToArray(), Is.EqualTo(expected[0]), "prefill logits");
        for (int i = 0; i < 4; i++) Assert.That(timed.Decode(100 + i).ToArray(), Is.EqualTo(expected[i + 1]), $"decode step {i}");

        // Every phase of a Gemma 2 pass ran at least once (Sample is the caller's and was not lapped here).
        foreach (Phase phase in Enum.GetValues<Phase>().Where(p => p != Phase.Sample))
            Assert.That(profile.WallTicks[(int)phase], Is.Positive, phase.ToString());
        Assert.That(profile.WallTicks[(int)Phase.Sample], Is.Zero);
        // The serial phases make no pool calls; the matmuls of the decode steps do when there are workers, and so do
        // GELU·up of a multi-row pass (the prefill: one pool item per row) and the soft-cap of the demo's 11427 logits
        // (a row over 1024 wide is cut in pieces when there are fewer rows than threads).
        foreach (Phase phase in (Phase[])[Phase.Embed, Phase.Norms, Phase.Rope])
            Assert.That(profile.Calls[(int)phase], Is.Zero, phase.ToString());
        Assert.That(profile.Calls[(int)Phase.Activation], threads > 1 ? Is.Positive : Is.Zero, "Activation");
        Assert.That(profile.Calls[(int)Phase.SoftCap], threads > 1 ? Is.Positive : Is.Zero, "SoftCap");
        if (threads > 1)
            Assert.That(profile.Calls[(int)Phase.GateUp] + profile.Calls[(int)Phase.Head], Is.Positive, "matmul pool calls");
        Assert.That(profile.Threads, Is.EqualTo(threads));

        profile.Dispose();
        if (timed.Pool != null) Assert.That(timed.Pool.Times, Is.Null, "detached");
    }

    [Test]
    public void DecodeLogitsDoNotDependOnTheThreadCount()
    {
        // With 2 threads the one-row elementwise phases (soft-cap of 11427 logits) run on the pool in pieces; the matmuls
        // split rows. Neither may change a bit against the single-threaded pass.
        int[] prompt = GoldenCase.Demo(0).PromptIds;
        var logits = new List<float[]>[2];
        for (int t = 1; t <= 2; t++)
        {
            using var model = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = t, ContextLength = 64 });
            using var ctx = model.CreateContext();
            logits[t - 1] = [ctx.Prefill(prompt).ToArray()];
            for (int i = 0; i < 4; i++) logits[t - 1].Add(ctx.Decode(100 + i).ToArray());
        }
        for (int i = 0; i < logits[0].Count; i++)
            Assert.That(logits[1][i].Select(BitConverter.SingleToInt32Bits), Is.EqualTo(logits[0][i].Select(BitConverter.SingleToInt32Bits)), $"pass {i}");
    }

    [Test]
    public void APromptInSeveralChunksRunsTheOutputHeadOnce()
    {
        using var model = GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = 2, ContextLength = 64, PrefillChunk = 4 });
        // 18 tokens (the golden prompt's ids repeated): five chunks of at most 4, the last one partial.
        int[] ids = GoldenCase.Demo(0).PromptIds;
        int[] prompt = Enumerable.Range(0, 18).Select(i => ids[i % ids.Length]).ToArray();
        using var ctx = model.CreateContext();
        using var profile = new StepProfile(ctx.Pool);
        ctx.State.Profile = profile;
        ctx.Prefill(prompt);
        Assert.That(profile.Calls[(int)Phase.Head], Is.EqualTo(1), "one head call for the last chunk (the demo head is large enough for the pool)");
        Assert.That(profile.Calls[(int)Phase.Qkv], Is.EqualTo((prompt.Length + 3) / 4 * model.Config.NumLayers));
    }
}
