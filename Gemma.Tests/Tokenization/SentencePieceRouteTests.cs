using Gemma.Core;
using Gemma.Core.Tokenization;
using Microsoft.ML.Tokenizers;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>
/// The tokenizer.model route (and so the GGUF route, which uses the same pieces/scores/types): a SentencePiece model
/// equivalent to the real tokenizer.json must give the golden ids. Also records how far Microsoft.ML.Tokenizers'
/// own SentencePieceTokenizer gets on the same model, which is why it is not our encoder (docs/tokenizer.md).
/// </summary>
[Category("Tokenizer")]
public class SentencePieceRouteTests
{
    private static readonly Lazy<byte[]> Model = new(() =>
        SentencePieceModelWriter.FromTokenizerJson(TokenizerFixtures.Full, TokenizerFixtures.FullTokenizerPath));

    private static readonly Lazy<GemmaTokenizer> FromModel = new(() =>
        GemmaTokenizer.FromSentencePieceModel(new MemoryStream(Model.Value), "synthetic tokenizer.model"));

    private static IEnumerable<TokenizerFixtures.DevCase> Cases() => TokenizerFixtures.DevCases();

    [TestCaseSource(nameof(Cases))]
    public void SentencePieceModelGivesGoldenIds(TokenizerFixtures.DevCase c)
    {
        Assert.That(FromModel.Value.EncodeToIds(c.Text, addBos: true), Is.EqualTo(c.IdsWithBos), c.Text);
        Assert.That(FromModel.Value.Decode(c.Ids), Is.EqualTo(c.Decoded));
    }

    [Test]
    public void SentencePieceModelGivesGoldenChats()
    {
        foreach (var chat in TokenizerFixtures.DevChats())
        {
            var messages = chat.Messages.Select(m => new GemmaChatMessage(GemmaChatMessage.ParseRole(m.Role), m.Content)).ToArray();
            Assert.That(ChatTemplate.EncodeToIds(FromModel.Value, messages), Is.EqualTo(chat.Ids));
        }
    }

    [Test]
    public void SpecialIdsComeFromTheTrainerSpec()
    {
        var t = FromModel.Value;
        Assert.That((t.VocabularySize, t.PadId, t.EosId, t.BosId, t.UnknownId, t.StartOfTurnId, t.EndOfTurnId),
            Is.EqualTo((256_000, 0, 1, 2, 3, 106, 107)));
    }

    [Test]
    public void FromVocabularyIsTheGgufEntryPoint()
    {
        var full = TokenizerFixtures.Full;
        var model = FromModel.Value;
        var pieces = Enumerable.Range(0, model.VocabularySize).Select(model.GetPiece).ToArray();
        var types = Enumerable.Range(0, model.VocabularySize).Select(id => (int)model.GetTokenType(id)).ToArray();
        // Scores as a GGUF converter writes them for SentencePiece BPE: higher merges first. Here: minus the id, so
        // the test also shows which goldens survive a cruder score (the merged piece's id) — all of them.
        var scores = Enumerable.Range(0, model.VocabularySize).Select(id => types[id] == 1 ? -(float)id : 0f).ToArray();
        var gguf = GemmaTokenizer.FromVocabulary(pieces, scores, types, bosId: 2, eosId: 1, unknownId: 3, padId: 0, sourceName: "gguf");
        foreach (var c in TokenizerFixtures.DevCases())
        {
            Assert.That(gguf.EncodeToIds(c.Text, addBos: true), Is.EqualTo(full.EncodeToIds(c.Text, addBos: true)), c.Text);
        }
    }

    /// <summary>A GGUF or SentencePiece model that types the turn markers as user-defined must not weaken the chat template.</summary>
    [Test]
    public void TurnMarkersAreControlTokensWhateverTheSourceSays()
    {
        string[] pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n", "a", "b", "ab"];
        int[] types = [3, 3, 3, 2, 4, 4, 4, 1, 1, 1]; // turn markers typed USER_DEFINED (4)
        var t = GemmaTokenizer.FromVocabulary(pieces, new float[pieces.Length], types, bosId: 2, eosId: 1, unknownId: 3, padId: 0);
        Assert.That((t.GetTokenType(4), t.GetTokenType(5), t.GetTokenType(6)), Is.EqualTo((GemmaTokenType.Control, GemmaTokenType.Control, GemmaTokenType.UserDefined)));
        int[] ids = ChatTemplate.EncodeToIds(t, [GemmaChatMessage.User("<start_of_turn>ab")]);
        Assert.That(ids.Count(id => id == 4), Is.EqualTo(2), "the template's user turn and generation prompt only");
        Assert.That(t.EncodeToIds("<start_of_turn>ab", addBos: false), Is.EqualTo(new[] { 4, 9 }), "parsed when asked");
    }

    [Test]
    public void BadVocabulariesAreRejected()
    {
        Assert.Throws<GemmaException>(() => GemmaTokenizer.FromVocabulary(["a", "b"], [0f], [1, 1], 0, 1));
        Assert.Throws<GemmaException>(() => GemmaTokenizer.FromVocabulary(["a", "b"], [0f, 0f], [1, 9], 0, 1));
        Assert.Throws<GemmaException>(() => GemmaTokenizer.FromVocabulary(["a", "b"], [0f, 0f], [1, 1], 0, 5));
        Assert.Throws<GemmaException>(() => GemmaTokenizer.FromVocabulary([], [], [], 0, 0));
        var ex = Assert.Throws<GemmaException>(() => GemmaTokenizer.FromSentencePieceModel(new MemoryStream(Model.Value[..1000]), "cut.model"));
        Assert.That(ex!.Message, Does.Contain("cut.model"));
        ex = Assert.Throws<GemmaException>(() => GemmaTokenizer.FromSentencePieceModel(new MemoryStream("{\"model\": 1}"u8.ToArray()), "json.model"));
        Assert.That(ex!.Message, Does.Contain("json.model"));
    }

    /// <summary>
    /// Microsoft.ML.Tokenizers 2.0.1 on the same model, control pieces passed as special tokens (without them it
    /// cannot produce them at all). This pins the gap documented in docs/tokenizer.md exactly: it reproduces the golden
    /// ids of every dev case but three — runs of newlines (#9) and of spaces (#11) are not merged into the multi-newline
    /// / multi-space pieces, and a long run of one letter (#25) is split differently. If a new ML.Tokenizers closes (or
    /// widens) the gap, this test fails and the route should be reconsidered.
    /// </summary>
    [Test]
    public void MicrosoftMLTokenizersGap()
    {
        var full = TokenizerFixtures.Full;
        var special = Enumerable.Range(0, full.VocabularySize)
            .Where(id => full.GetTokenType(id) is GemmaTokenType.Control or GemmaTokenType.UserDefined)
            .ToDictionary(full.GetPiece, id => id);
        var ml = SentencePieceTokenizer.Create(new MemoryStream(Model.Value), false, false, special);
        var differing = new List<int>();
        foreach (var c in TokenizerFixtures.DevCases())
        {
            IReadOnlyList<int> ids = ml.EncodeToIds(c.Text); // an exception here is a change in the gap too: it fails the test
            if (!ids.SequenceEqual(c.Ids))
            {
                differing.Add(c.Index);
                TestContext.Out.WriteLine($"  #{c.Index} {c.Text[..Math.Min(20, c.Text.Length)].Replace("\n", "\\n")}: [{string.Join(",", ids.Take(12))}] vs golden [{string.Join(",", c.Ids.Take(12))}]");
            }
        }
        Assert.That(TokenizerFixtures.DevCases().Count(), Is.EqualTo(27), "fixture: the dev cases");
        Assert.That(differing, Is.EqualTo(new[] { 9, 11, 25 }), "the known gap: the golden cases ML.Tokenizers does not reproduce");
    }
}
