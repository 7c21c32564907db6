using System.Buffers;
using Microsoft.ML.Tokenizers;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>GemmaTokenizer seen through Microsoft.ML.Tokenizers' abstract Tokenizer.</summary>
[Category("Tokenizer")]
public class MLTokenizerAdapterTests
{
    private static IEnumerable<TokenizerFixtures.DevCase> Cases() => TokenizerFixtures.DevCases();

    [TestCaseSource(nameof(Cases))]
    public void IdsTokensOffsetsAndDecodeMatchTheGolden(TokenizerFixtures.DevCase c)
    {
        Tokenizer ml = TokenizerFixtures.Full.AsMLTokenizer();
        Assert.That(ml.EncodeToIds(c.Text), Is.EqualTo(c.Ids));
        Assert.That(ml.CountTokens(c.Text), Is.EqualTo(c.Ids.Length));
        var tokens = ml.EncodeToTokens(c.Text, out _);
        Assert.That(tokens.Select(t => t.Value), Is.EqualTo(c.Pieces));
        // Offsets tile the text, and each non-byte token's range is its piece with '▁' read as ' '.
        int expectedStart = 0;
        foreach (var t in tokens)
        {
            var (start, length) = t.Offset.GetOffsetAndLength(c.Text.Length);
            if (!t.Value.StartsWith("<0x", StringComparison.Ordinal))
            {
                Assert.That(start, Is.EqualTo(expectedStart), t.Value);
                Assert.That(c.Text.Substring(start, length).Replace(' ', '\u2581'), Is.EqualTo(t.Value));
            }
            expectedStart = start + length;
        }
        Assert.That(expectedStart, Is.EqualTo(c.Text.Length));
        Assert.That(ml.Decode(c.Ids), Is.EqualTo(c.Decoded));
    }

    [Test]
    public void ByteFallbackTokensShareTheirCharacterOffsets()
    {
        Tokenizer ml = TokenizerFixtures.Full.AsMLTokenizer();
        // 𠮷 is a piece of Gemma's vocabulary; U+3400 and U+20000 are not: 3 and 4 byte pieces.
        const string text = "a𠮷\u3400\U00020000";
        var tokens = ml.EncodeToTokens(text, out _);
        Assert.That(tokens.Select(t => t.Value), Is.EqualTo(new[] { "a", "𠮷", "<0xE3>", "<0x90>", "<0x80>", "<0xF0>", "<0xA0>", "<0x80>", "<0x80>" }));
        Assert.That(tokens.Select(t => t.Offset.GetOffsetAndLength(text.Length)),
            Is.EqualTo(new[] { (0, 1), (1, 2), (3, 1), (3, 1), (3, 1), (4, 2), (4, 2), (4, 2), (4, 2) }));
    }

    [Test]
    public void MaxTokenCountAndSpanDecode()
    {
        Tokenizer ml = TokenizerFixtures.Full.AsMLTokenizer();
        // The expectation is the Hugging Face golden (tokenizer-dev.json), not ML.Tokenizers' own output.
        TokenizerFixtures.DevCase golden = TokenizerFixtures.DevCases().Single(c => c.Text == "日本の首都は東京です。");
        var ids = ml.EncodeToIds(golden.Text, maxTokenCount: 3, out _, out int consumed);
        Assert.That(ids, Is.EqualTo(golden.Ids[..3]));
        Assert.That(golden.Pieces[..3], Is.EqualTo(new[] { "日本の", "首都", "は" }), "fixture: the first three pieces");
        Assert.That(consumed, Is.EqualTo("日本の首都は".Length));

        var buffer = new char[4];
        var status = ml.Decode([47172, 137855, 235418], buffer, out int idsConsumed, out int written);
        Assert.That((status, idsConsumed, new string(buffer, 0, written)), Is.EqualTo((OperationStatus.DestinationTooSmall, 1, "日本の")));
        buffer = new char[6];
        Assert.That(ml.Decode([47172, 137855, 235418], buffer, out _, out written), Is.EqualTo(OperationStatus.Done));
        Assert.That(new string(buffer, 0, written), Is.EqualTo("日本の首都は"));
    }
}
