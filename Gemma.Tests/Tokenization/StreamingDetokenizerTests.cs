using System.Text;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

[Category("Tokenizer")]
public class StreamingDetokenizerTests
{
    private static string Stream(GemmaTokenizer tokenizer, IEnumerable<int> ids, bool skipControl, List<string>? chunks = null)
    {
        var detok = new StreamingDetokenizer(tokenizer, skipControl);
        var text = new StringBuilder();
        foreach (int id in ids)
        {
            var chunk = detok.Append(id);
            chunks?.Add(chunk.ToString());
            text.Append(chunk);
        }
        text.Append(detok.Flush());
        return text.ToString();
    }

    [Test]
    public void ByteFallbackPiecesJoinIntoOneCharacter()
    {
        var t = TokenizerFixtures.Full;
        int[] ids = new[] { "<0xE3>", "<0x81>", "<0x82>", "▁world" }.Select(p => t.TryGetId(p, out int id) ? id : -1).ToArray();
        var chunks = new List<string>();
        Assert.That(Stream(t, ids, skipControl: true, chunks), Is.EqualTo("あ world"));
        Assert.That(chunks, Is.EqualTo(new[] { "", "", "あ", " world" }));
    }

    [Test]
    public void EmojiFromTheGoldenStreamsWithoutBrokenSurrogates()
    {
        var t = TokenizerFixtures.Full;
        const string text = "絵文字テスト 😀🎌🍣 吉野家と𠮷野家";
        var chunks = new List<string>();
        Assert.That(Stream(t, t.EncodeToIds(text, addBos: true), skipControl: true, chunks), Is.EqualTo(text));
        foreach (string chunk in chunks)
        {
            Assert.That(chunk.EnumerateRunes().All(r => r != Rune.ReplacementChar), Is.True, chunk);
            Assert.That(Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(chunk)), Is.EqualTo(chunk), "chunk is well-formed UTF-16");
        }
    }

    [Test]
    public void IncompleteCharacterAtTheEndFlushesAsReplacement()
    {
        var t = TokenizerFixtures.Full;
        t.TryGetId("<0xE3>", out int e3);
        t.TryGetId("<0x81>", out int b81);
        var detok = new StreamingDetokenizer(t);
        Assert.That(detok.Append(e3).ToString() + detok.Append(b81).ToString(), Is.Empty);
        Assert.That(detok.Flush().ToString(), Is.EqualTo("\uFFFD"));
        Assert.That(t.Decode([e3, b81]), Is.EqualTo("\uFFFD"));
        t.TryGetId("の", out int no);
        Assert.That(detok.AppendToString(no), Is.EqualTo("の"), "ready for a new stream after Flush");
    }

    [Test]
    public void ControlTokensAreSkippedOrKept()
    {
        var t = TokenizerFixtures.Full;
        int[] ids = ChatTemplate.EncodeToIds(t, [GemmaChatMessage.User("こんにちは")]);
        Assert.That(Stream(t, ids, skipControl: true), Is.EqualTo("user\nこんにちは\nmodel\n"));
        Assert.That(Stream(t, ids, skipControl: false), Is.EqualTo(ChatTemplate.Render([GemmaChatMessage.User("こんにちは")])));
    }

    /// <summary>
    /// Property: for random id sequences — heavy in byte pieces, so that valid, truncated and invalid UTF-8 all occur,
    /// plus control tokens, whitespace pieces and ids outside the vocabulary — the concatenated stream equals Decode.
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void StreamEqualsDecodeOnRandomSequences(bool skipControl)
    {
        foreach (var tokenizer in new[] { TokenizerFixtures.Full, TokenizerFixtures.Demo })
        {
            var rng = new Random(20261127);
            int[] bytePieces = Enumerable.Range(0, tokenizer.VocabularySize).Where(id => tokenizer.GetTokenType(id) == GemmaTokenType.Byte).ToArray();
            Assert.That(bytePieces, Has.Length.GreaterThanOrEqualTo(255));
            int[] utf8Leads = bytePieces.Where(id => tokenizer.GetPiece(id)[3] is 'C' or 'D' or 'E' or 'F').ToArray();
            int[] continuations = bytePieces.Where(id => tokenizer.GetPiece(id)[3] is '8' or '9' or 'A' or 'B').ToArray();
            for (int trial = 0; trial < 2000; trial++)
            {
                var ids = new int[rng.Next(0, 40)];
                for (int i = 0; i < ids.Length; i++)
                {
                    ids[i] = rng.Next(10) switch
                    {
                        0 or 1 => utf8Leads[rng.Next(utf8Leads.Length)],
                        2 or 3 or 4 => continuations[rng.Next(continuations.Length)],
                        5 => bytePieces[rng.Next(bytePieces.Length)],
                        6 => rng.Next(0, 220),                                   // control, user-defined, whitespace runs
                        7 => rng.Next(2) == 0 ? -1 - rng.Next(5) : tokenizer.VocabularySize + rng.Next(5), // outside
                        _ => rng.Next(tokenizer.VocabularySize),
                    };
                }
                Assert.That(Stream(tokenizer, ids, skipControl), Is.EqualTo(tokenizer.Decode(ids, skipControl)),
                    () => $"{tokenizer.Source}: [{string.Join(", ", ids)}]");
            }
        }
    }

    [Test]
    public void AppendDoesNotAllocatePerToken()
    {
        var t = TokenizerFixtures.Full;
        int[] ids = t.EncodeToIds(string.Concat(Enumerable.Repeat("今日はいい天気ですね。散歩 😀 に行きましょう。", 50)), addBos: true);
        var detok = new StreamingDetokenizer(t);
        foreach (int id in ids) detok.Append(id); // warm up: buffer growth, JIT
        detok.Flush();
        long before = GC.GetAllocatedBytesForCurrentThread();
        int chars = 0;
        foreach (int id in ids) chars += detok.Append(id).Length;
        chars += detok.Flush().Length;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(chars, Is.GreaterThan(1000));
        Assert.That(allocated, Is.LessThan(1024), $"{allocated} bytes for {ids.Length} tokens");
    }
}
