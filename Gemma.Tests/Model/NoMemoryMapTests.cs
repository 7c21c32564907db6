using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using Gemma.Tests.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Model;

/// <summary>
/// <see cref="GemmaModelOptions.MemoryMap"/> = false (<c>--no-mmap</c>): the weights are a private copy, the file is
/// unmapped, and the model computes exactly what the mapped one does (the copy is byte for byte).
/// </summary>
[Category("Model")]
public class NoMemoryMapTests
{
    [TestCase("gemma2-micro", false)] // Hugging Face folder (safetensors)
    [TestCase("gemma2-micro", true)]  // GGUF
    [TestCase("gemma3-micro", false)]
    public void CopiedWeightsReproduceTheGoldensAndTheMappedLogits(string name, bool gguf)
    {
        GoldenCase g = GoldenCase.Tiny(name);
        using var dir = new Fixtures.TempDir();
        string path = g.ModelDir;
        if (gguf)
        {
            path = Path.Combine(dir.Path, "model.gguf");
            GgufModelWriter.Convert(g.ModelDir, path, GgufOutputType.BF16);
        }
        using var copied = GemmaModel.Load(path, new GemmaModelOptions { Threads = 2, MemoryMap = false });
        using var mapped = GemmaModel.Load(path, new GemmaModelOptions { Threads = 2 });
        float[] a = Run(copied, g), b = Run(mapped, g);
        GoldenLogitsTests.AssertClose(a, g.StepLogits, g.Vocab, $"{name} copied");
        Assert.That(a, Is.EqualTo(b), "the copy must give the mapped model's logits bit for bit");
    }

    [Test]
    public void TheCopyOutlivesTheFileAndDisposeFreesIt()
    {
        // Unmapped after the copy: deleting the file (Linux allows it while open) cannot affect the loaded model.
        GoldenCase g = GoldenCase.Tiny("gemma2-micro");
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "model.gguf");
        GgufModelWriter.Convert(g.ModelDir, path, GgufOutputType.F32);
        var model = GemmaModel.Load(path, new GemmaModelOptions { Threads = 1, MemoryMap = false });
        File.Delete(path);
        GoldenLogitsTests.AssertClose(Run(model, g), g.StepLogits, g.Vocab, "copied, file deleted");
        model.Dispose();
        model.Dispose(); // twice is harmless
    }

    private static float[] Run(GemmaModel model, GoldenCase g)
    {
        using var ctx = model.CreateContext();
        var steps = new float[g.GreedyIds.Length * g.Vocab];
        ctx.Prefill(g.PromptIds).CopyTo(steps);
        for (int i = 0; i + 1 < g.GreedyIds.Length; i++) ctx.Decode(g.GreedyIds[i]).CopyTo(steps.AsSpan((i + 1) * g.Vocab));
        return steps;
    }
}
