using System.Text;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>
/// Long inputs on the real 256k vocabulary: loading it whole, and one megabyte of Japanese without a newline (a
/// quadratic merge loop would make this test, and CI, far slower). Speed itself is measured in
/// Gemma.Benchmarks/TokenizerBenchmarks (MB/s, load time), never asserted here.
/// </summary>
[Category("Tokenizer")]
public class TokenizerLongInputTests
{
    [Test]
    public void TheFullVocabularyLoads()
    {
        var tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerFixtures.FullTokenizerPath);
        Assert.That(tokenizer.VocabularySize, Is.EqualTo(256_000));
        TokenizerFixtures.DevCase c = TokenizerFixtures.DevCases().First();
        Assert.That(tokenizer.EncodeToIds(c.Text, addBos: true), Is.EqualTo(c.IdsWithBos), "a fresh load gives the golden ids");
    }

    [Test]
    public void OneMegabyteOfJapaneseWithoutNewlineRoundTrips()
    {
        var tokenizer = TokenizerFixtures.Full;
        const string sentence = "今日はいい天気ですね。散歩に行きましょうか？カタカナとひらがなと漢字が混ざった文章、ｱｲｳｴｵ 𠮷野家 😀。";
        var text = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(text.ToString()) < 1 << 20) text.Append(sentence, 0, sentence.Length);
        string input = text.ToString();

        int[] ids = tokenizer.EncodeToIds(input, addBos: false);
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(input));
        // No merge crosses a sentence boundary here (each starts with 今日 after 。), so the ids repeat per sentence.
        int[] one = tokenizer.EncodeToIds(sentence, addBos: false);
        int repeats = input.Length / sentence.Length;
        Assert.That(ids, Has.Length.EqualTo(one.Length * repeats));
        Assert.That(ids[^one.Length..], Is.EqualTo(one));
    }
}
