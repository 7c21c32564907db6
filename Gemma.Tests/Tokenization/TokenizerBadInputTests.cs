using System.IO.Compression;
using System.Text;
using Gemma.Core;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>Documented behaviour on bad text, bad ids and bad files (docs/tokenizer.md, "Bad input").</summary>
[Category("Tokenizer")]
public class TokenizerBadInputTests
{
    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    [Test]
    public void EmptyTextGivesNoIdsOrJustBos()
    {
        var t = TokenizerFixtures.Full;
        Assert.That(t.EncodeToIds("", addBos: false), Is.Empty);
        Assert.That(t.EncodeToIds("", addBos: true), Is.EqualTo(new[] { 2 }));
        Assert.That(t.Decode([]), Is.EqualTo(""));
        Assert.Throws<ArgumentNullException>(() => t.EncodeToIds(null!, addBos: false));
    }

    [Test]
    public void LoneSurrogatesEncodeAsReplacementCharacter()
    {
        var t = TokenizerFixtures.Full;
        int[] replacement = t.EncodeToIds("a\uFFFDb\uFFFD", addBos: false);
        Assert.That(t.EncodeToIds("a\uD800b\uDC00", addBos: false), Is.EqualTo(replacement));
        Assert.That(t.EncodeToIds("\uDBFF", addBos: false), Is.EqualTo(t.EncodeToIds("\uFFFD", addBos: false)));
        Assert.That(t.EncodeToIds("x\uD83D", addBos: false), Is.EqualTo(t.EncodeToIds("x\uFFFD", addBos: false)), "high surrogate at the end");
        Assert.That(t.Decode(replacement), Is.EqualTo("a\uFFFDb\uFFFD"));
        // A well-formed pair is untouched.
        Assert.That(t.Decode(t.EncodeToIds("\uD83D\uDE00", addBos: false)), Is.EqualTo("😀"));
    }

    [Test]
    public void IdsOutsideTheVocabularyDecodeAsReplacementCharacter()
    {
        var t = TokenizerFixtures.Full;
        Assert.That(t.Decode([4521, -1, 256_000, int.MaxValue, int.MinValue, 235341]), Is.EqualTo("Hello\uFFFD\uFFFD\uFFFD\uFFFD!"));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.GetPiece(256_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.GetPiece(-1));
        Assert.That(t.TryGetId("no such piece", out _), Is.False);
        Assert.That(t.IsControl(-5), Is.False);
    }

    [Test]
    public void InvalidUtf8FromBytePiecesDecodesAsReplacementCharacters()
    {
        var t = TokenizerFixtures.Full;
        int Byte(int b) => t.TryGetId($"<0x{b:X2}>", out int id) ? id : throw new AssertionException($"no byte piece {b:X2}");
        // Lone continuation byte, then a truncated 3-byte sequence followed by a normal piece.
        Assert.That(t.Decode([Byte(0x81), Byte(0xE3), Byte(0x81), 4521]), Is.EqualTo("\uFFFD\uFFFDHello"));
        Assert.That(t.Decode([Byte(0xE3), Byte(0x81), Byte(0x82)]), Is.EqualTo("あ"));
    }

    [Test]
    public void TextEncodesAndDecodesForAnyString()
    {
        var t = TokenizerFixtures.Demo; // small vocabulary: many characters need byte fallback or <unk>
        var rng = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            var chars = new char[rng.Next(0, 30)];
            for (int i = 0; i < chars.Length; i++) chars[i] = (char)rng.Next(0, 0x10000);
            string text = new(chars);
            int[] ids = t.EncodeToIds(text, addBos: false, parseControlTokens: false);
            Assert.That(ids, Has.All.InRange(0, t.VocabularySize - 1));
            string decoded = t.Decode(ids);
            Assert.DoesNotThrow(() => StrictUtf8.GetByteCount(decoded), "decoding gives well-formed text (no lone surrogates)");
        }
    }

    /// <summary>
    /// Property: with the full vocabulary every scalar is a piece or has byte pieces, so any well-formed string
    /// round-trips, with or without control-token parsing (control text decodes to itself) — except a literal '▁',
    /// which decodes as a space, as in HF (dev golden "▁already▁has▁metaspace").
    /// </summary>
    [Test]
    public void AnyWellFormedTextRoundTrips()
    {
        var t = TokenizerFixtures.Full;
        var rng = new Random(42);
        string[] fragments = [" ", "  ", "\t", "\n", "\n\n", "\r\n", "\u3000", "<start_of_turn>", "<end_of_turn>", "<bos>", "<table>",
            "<unused7>", "<0x41>", "東京", "ｶﾀｶﾅ", "Ａ", "😀", "𠮷", "\u3400", "\U00020000", "é", "e\u0301", "x", "Hello"];
        for (int trial = 0; trial < 500; trial++)
        {
            var text = new System.Text.StringBuilder();
            int parts = rng.Next(0, 25);
            for (int i = 0; i < parts; i++)
            {
                if (rng.Next(4) == 0)
                {
                    int scalar = rng.Next(3) == 0 ? rng.Next(0x10000, 0x110000) : rng.Next(0x20, 0xD800);
                    if (scalar != 0x2581) text.Append(char.ConvertFromUtf32(scalar));
                }
                else text.Append(fragments[rng.Next(fragments.Length)]);
            }
            string s = text.ToString();
            foreach (bool parse in new[] { true, false })
            {
                int[] ids = t.EncodeToIds(s, addBos: false, parseControlTokens: parse);
                Assert.That(t.Decode(ids), Is.EqualTo(s), () => $"parse={parse}: {s}");
                Assert.That(ids.Contains(106), Is.EqualTo(parse && s.Contains("<start_of_turn>")));
            }
        }
    }

    [Test]
    public void MissingAndCorruptFilesThrowGemmaExceptionNamingTheFile()
    {
        string dir = Path.Combine(Path.GetTempPath(), "gemma-tok-bad-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Path.Combine(dir, "missing.json")), "missing.json");
            AssertFails(() => GemmaTokenizer.FromModelDirectory(dir), dir);
            AssertFails(() => GemmaTokenizer.FromModelDirectory(Path.Combine(dir, "nope")), "nope");

            string Write(string name, string json) { string p = Path.Combine(dir, name); File.WriteAllText(p, json); return p; }
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("a.json", "{ not json")), "a.json", "JSON");
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("b.json", "[]")), "b.json", "model");
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("c.json", """{"model":{"type":"Unigram"}}""")), "c.json", "Unigram");
            const string norm = "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}";
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("d.json",
                "{" + norm + ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"<bos>\":0,\"<eos>\":1,\"a\":2},\"merges\":[\"a b\"]}}")), "d.json", "merge 0");
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("e.json",
                "{" + norm + ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"<bos>\":0,\"<eos>\":1,\"a\":3},\"merges\":[]}}")), "e.json", "id 2");
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("f.json",
                "{\"normalizer\":{\"type\":\"NFKC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}")), "f.json", "normalizer");
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(Write("g.json",
                "{" + norm + ",\"model\":{\"type\":\"BPE\",\"vocab\":{\"<bos>\":\"zero\"},\"merges\":[]}}")), "g.json");

            // A truncated gzip of the real tokenizer.
            byte[] gz = File.ReadAllBytes(TokenizerFixtures.FullTokenizerPath);
            string cut = Path.Combine(dir, "cut.json.gz");
            File.WriteAllBytes(cut, gz[..(gz.Length / 2)]);
            AssertFails(() => GemmaTokenizer.FromTokenizerJson(cut), "cut.json.gz");
            AssertFails(() => GemmaTokenizer.FromSentencePieceModel(Write("h.model", "\u0001\u0002garbage")), "h.model");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void StreamFactoryAcceptsPlainAndGzipJson()
    {
        byte[] gz = File.ReadAllBytes(TokenizerFixtures.FullTokenizerPath);
        using var plain = new MemoryStream();
        using (var unzip = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress)) unzip.CopyTo(plain);
        var fromPlain = GemmaTokenizer.FromTokenizerJson(new MemoryStream(plain.ToArray()), "plain");
        Assert.That(fromPlain.EncodeToIds("日本の首都は東京です。", addBos: true), Is.EqualTo(new[] { 2, 47172, 137855, 235418, 19485, 2297, 235362 }));
        Assert.That(Encoding.UTF8.GetString(plain.GetBuffer(), 0, 1), Is.EqualTo("{"));
    }

    private static void AssertFails(TestDelegate load, params string[] mustContain)
    {
        var ex = Assert.Throws<GemmaException>(load);
        foreach (string s in mustContain) Assert.That(ex!.Message, Does.Contain(s));
    }
}
