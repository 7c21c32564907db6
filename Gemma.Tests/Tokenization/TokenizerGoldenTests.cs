using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>Ids, pieces and decoded text equal Hugging Face tokenizers on every golden case.</summary>
[Category("Tokenizer")]
public class TokenizerGoldenTests
{
    private static IEnumerable<TokenizerFixtures.DevCase> Cases() => TokenizerFixtures.DevCases();

    [TestCaseSource(nameof(Cases))]
    public void IdsEqualReference(TokenizerFixtures.DevCase c)
    {
        Assert.That(TokenizerFixtures.Full.EncodeToIds(c.Text, addBos: false), Is.EqualTo(c.Ids), c.Text);
    }

    [TestCaseSource(nameof(Cases))]
    public void IdsWithBosEqualReference(TokenizerFixtures.DevCase c)
    {
        Assert.That(TokenizerFixtures.Full.EncodeToIds(c.Text, addBos: true), Is.EqualTo(c.IdsWithBos), c.Text);
    }

    [TestCaseSource(nameof(Cases))]
    public void PiecesEqualReference(TokenizerFixtures.DevCase c)
    {
        var tokenizer = TokenizerFixtures.Full;
        Assert.That(c.Ids.Select(tokenizer.GetPiece), Is.EqualTo(c.Pieces), c.Text);
        foreach (var (id, piece) in c.Ids.Zip(c.Pieces))
        {
            Assert.That(tokenizer.TryGetId(piece, out int back) && back == id, Is.True, piece);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void DecodeEqualsReference(TokenizerFixtures.DevCase c)
    {
        Assert.That(TokenizerFixtures.Full.Decode(c.Ids), Is.EqualTo(c.Decoded));
        Assert.That(TokenizerFixtures.Full.Decode(c.IdsWithBos), Is.EqualTo("<bos>" + c.Decoded));
    }

    [Test]
    public void DemoTokenizerReproducesGoldenPrompts()
    {
        var prompts = TokenizerFixtures.DemoPrompts().ToArray();
        Assert.That(prompts, Is.Not.Empty);
        foreach (var (prompt, ids) in prompts)
        {
            Assert.That(TokenizerFixtures.Demo.EncodeToIds(prompt, addBos: true), Is.EqualTo(ids), prompt);
            Assert.That(TokenizerFixtures.Demo.Decode(ids, skipControlTokens: true), Is.EqualTo(prompt));
        }
    }

    /// <summary>The dev goldens' emoji and rare kanji all turn out to be pieces; these two characters are not.</summary>
    [Test]
    public void CharactersOutsideTheVocabularyUseByteFallback()
    {
        var t = TokenizerFixtures.Full;
        const string text = "\u3400は\U00020000"; // CJK Ext. A (UTF-8 E3 90 80) and Ext. B (F0 A0 80 80)
        int[] ids = t.EncodeToIds(text, addBos: false);
        Assert.That(ids.Select(t.GetPiece),
            Is.EqualTo(new[] { "<0xE3>", "<0x90>", "<0x80>", "は", "<0xF0>", "<0xA0>", "<0x80>", "<0x80>" }));
        Assert.That(t.Decode(ids), Is.EqualTo(text));
    }

    [Test]
    public void SpecialIdsOfTheRealVocabulary()
    {
        var t = TokenizerFixtures.Full;
        Assert.Multiple(() =>
        {
            Assert.That(t.VocabularySize, Is.EqualTo(256_000));
            Assert.That((t.PadId, t.EosId, t.BosId, t.UnknownId), Is.EqualTo((0, 1, 2, 3)));
            Assert.That((t.StartOfTurnId, t.EndOfTurnId), Is.EqualTo((106, 107)));
            Assert.That(t.GetTokenType(106), Is.EqualTo(GemmaTokenType.Control));
            Assert.That(t.GetTokenType(169), Is.EqualTo(GemmaTokenType.UserDefined)); // <table>
            Assert.That(t.GetPiece(217), Is.EqualTo("<0x00>"));
            Assert.That(t.GetTokenType(217), Is.EqualTo(GemmaTokenType.Byte));
        });
    }

    /// <summary>
    /// The demo vocabulary has neither a "\t" piece nor &lt;0x09&gt;: HF's BPE then emits &lt;unk&gt;, one per run of
    /// such characters (fuse_unk). Expected values read off HF's <c>BPE::merge_word</c>, not produced by our code.
    /// </summary>
    [Test]
    public void UnknownCharactersFuseIntoOneUnk()
    {
        var t = TokenizerFixtures.Demo;
        Assert.That(t.TryGetId("\t", out _) || t.TryGetId("<0x09>", out _), Is.False);
        int[] ids = t.EncodeToIds("で\t\tで\tで", addBos: false);
        Assert.That(ids, Is.EqualTo(new[] { 9935, 3, 9935, 3, 9935 }));
    }

    [Test]
    public void DemoVocabularyIds()
    {
        var t = TokenizerFixtures.Demo;
        Assert.That((t.VocabularySize, t.PadId, t.EosId, t.BosId, t.UnknownId, t.StartOfTurnId, t.EndOfTurnId),
            Is.EqualTo((11_427, 0, 1, 2, 3, 4, 5)));
    }
}
