using System.Diagnostics;
using System.Text;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>Guards against quadratic behaviour and slow loading; the real numbers are in Gemma.Benchmarks.</summary>
[Category("Tokenizer")]
public class TokenizerSpeedTests
{
    [Test]
    public void LoadingTheFullVocabularyIsFast()
    {
        _ = TokenizerFixtures.Full; // JIT and file cache warm-up
        var clock = Stopwatch.StartNew();
        var tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerFixtures.FullTokenizerPath);
        clock.Stop();
        TestContext.Out.WriteLine($"load 256k vocabulary + {tokenizer.MergeCount} merges (gzip): {clock.ElapsedMilliseconds} ms");
        Assert.That(tokenizer.VocabularySize, Is.EqualTo(256_000));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public void OneMegabyteOfJapaneseWithoutNewlineEncodesQuickly()
    {
        var tokenizer = TokenizerFixtures.Full;
        const string sentence = "今日はいい天気ですね。散歩に行きましょうか？カタカナとひらがなと漢字が混ざった文章、ｱｲｳｴｵ 𠮷野家 😀。";
        var text = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(text.ToString()) < 1 << 20) text.Append(sentence, 0, sentence.Length);
        string input = text.ToString();
        tokenizer.EncodeToIds(sentence, addBos: false); // JIT warm-up

        var clock = Stopwatch.StartNew();
        int[] ids = tokenizer.EncodeToIds(input, addBos: false);
        clock.Stop();
        double mb = Encoding.UTF8.GetByteCount(input) / 1e6;
        TestContext.Out.WriteLine($"{mb:F2} MB, {ids.Length} tokens in {clock.ElapsedMilliseconds} ms ({mb / clock.Elapsed.TotalSeconds:F1} MB/s)");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(input));
        // No merge crosses a sentence boundary here (each starts with 今日 after 。), so the ids repeat per sentence.
        int[] one = tokenizer.EncodeToIds(sentence, addBos: false);
        Assert.That(ids[..one.Length], Is.EqualTo(one));
    }
}
