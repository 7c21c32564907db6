using Gemma.Core.Chat;
using Gemma.Core.Generation;
using Gemma.Tests.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Chat;

[Category("Chat")]
public class GeneratorPoolTests
{
    [Test]
    public async Task AnIdleGeneratorIsRankedByThePrefixItCanKeepNotByTheIdsItShares()
    {
        // g1 shares a long prefix with the prompt, but its sliding-window ring has moved past it (nothing can be kept);
        // g2 shares only <bos>, which it can keep. The pool lends g2 and leaves g1's cache alone.
        var model = SmallWindowModel.Instance;
        var tokenizer = model.RequireTokenizer();
        using var pool = new GeneratorPool(2, () => new TextGenerator(model));
        int[] first = tokenizer.EncodeToIds("Debian システムでパッケージをインストールするには", addBos: true);
        int[] other = tokenizer.EncodeToIds("カーネル", addBos: true);

        GeneratorPool.Entry e1 = await pool.RentAsync(null, first, CancellationToken.None);
        var noEnd = new Dictionary<int, float> { [tokenizer.EndOfTurnId] = float.NegativeInfinity };
        foreach (int id in model.Config.EosTokenIds) noEnd[id] = float.NegativeInfinity;
        _ = e1.Generator.Generate(first, new SamplingOptions { Seed = 1, MaxTokens = 4 * SmallWindowModel.Window, LogitBias = noEnd }).ToList();
        pool.Return(e1, null);
        GeneratorPool.Entry e2 = await pool.RentAsync(null, other, CancellationToken.None);
        Assert.That(e2.Generator, Is.Not.SameAs(e1.Generator), "nothing of g1 can be kept for an unrelated prompt: a new generator");
        _ = e2.Generator.Generate(other, SamplingOptions.Greedy with { MaxTokens = 2 }).ToList();
        pool.Return(e2, null);

        int[] again = [.. first, .. tokenizer.EncodeToIds("設定", addBos: false)];
        Assert.That(e1.Generator.CachedTokens.Take(first.Length), Is.EqualTo(first), "fixture: g1 shares the whole first prompt");
        Assert.That(e1.Generator.KeepablePrefix(again), Is.Zero, "fixture: but cannot keep it");
        Assert.That(e2.Generator.KeepablePrefix(again), Is.EqualTo(1));
        GeneratorPool.Entry e3 = await pool.RentAsync(null, again, CancellationToken.None);
        Assert.That(e3.Generator, Is.SameAs(e2.Generator));
        pool.Return(e3, null);
    }
}
