using System.Text;
using System.Text.Json.Nodes;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Fuzzes the tokenizer loaders: the demo model's 370 KB <c>tokenizer.json</c> (a moderate number of cases: each
/// parse takes milliseconds), a small synthetic <c>tokenizer.json</c> built here (many cases), and a small
/// SentencePiece <c>tokenizer.model</c> built here (truncation at every byte, bit flips, byte values, varint damage).
/// A tokenizer that loads must encode and decode text into ids inside its vocabulary without throwing.
/// </summary>
[Category("Reliability")]
public class TokenizerFuzzTests
{
    private const string Sample = "Debian パッケージを インストール\n\n  <start_of_turn>user 123 ü €😀 \u0000";

    private static void CheckUsable(GemmaTokenizer t)
    {
        foreach (bool bos in new[] { false, true })
        {
            int[] ids = t.EncodeToIds(Sample, bos);
            if (ids.Any(id => (uint)id >= (uint)t.VocabularySize)) throw new FuzzInconsistency("an id outside the vocabulary");
            _ = t.Decode(ids);
        }
        if ((uint)t.BosId >= (uint)t.VocabularySize || (uint)t.EosId >= (uint)t.VocabularySize) throw new FuzzInconsistency("BOS/EOS outside the vocabulary");
    }

    private static void Run(FuzzRun run, string path, string label, byte[] bytes, Func<string, GemmaTokenizer> load) =>
        run.Case(label, bytes.Length, Path.GetFileName(path), () =>
        {
            File.Delete(path);
            File.WriteAllBytes(path, bytes);
            CheckUsable(load(path));
        });

    /// <summary>A small but complete Gemma-shaped tokenizer.json: specials, 256 byte pieces, a few merges.</summary>
    internal static byte[] SyntheticTokenizerJson()
    {
        var vocab = new JsonObject();
        string[] specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"];
        foreach (string s in specials) vocab[s] = vocab.Count;
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = vocab.Count;
        string[] merges = ["▁ t", "h e", "▁t he", "i n", "▁ a", "a n", "an d", "▁a nd", "e r", "▁ パ", "パ ッ"];
        foreach (string m in merges)
            foreach (string piece in m.Split(' ').Append(m.Replace(" ", "")))
                if (!vocab.ContainsKey(piece)) vocab[piece] = vocab.Count;
        foreach (char c in "abcdefghijklmnopqrstuvwxyz\n") if (!vocab.ContainsKey(c.ToString())) vocab[c.ToString()] = vocab.Count;
        var added = new JsonArray();
        for (int i = 0; i < specials.Length; i++)
            added.Add(new JsonObject { ["id"] = i, ["content"] = specials[i], ["special"] = true, ["normalized"] = false });
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = " " }, ["behavior"] = "MergedWithPrevious" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = true,
                ["vocab"] = vocab, ["merges"] = new JsonArray(merges.Select(m => (JsonNode)JsonValue.Create(m)).ToArray()),
            },
        };
        return Encoding.UTF8.GetBytes(root.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    [Test]
    public void SyntheticTokenizerJsonLoadsAsBuilt()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        File.WriteAllBytes(path, SyntheticTokenizerJson());
        var t = GemmaTokenizer.FromTokenizerJson(path);
        Assert.That(t.MergeCount, Is.EqualTo(11));
        Assert.That(t.Decode(t.EncodeToIds("the and パッ ü", addBos: false)), Is.EqualTo("the and パッ ü"));
    }

    [Test]
    public void SmallTokenizerJson()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        byte[] original = SyntheticTokenizerJson();
        var run = new FuzzRun("tokenizer.json (synthetic, " + original.Length + " B)");
        var rng = new Random(9001);
        var cases = new JsonMutator(original).Cases(9002, 1500).ToList();
        for (int i = 0; i < 400; i++) cases.Add(($"seed 9001 #{i} bit flips", Mutate.FlipBits(original, rng, 0, original.Length, 1 + rng.Next(3))));
        for (int i = 0; i < 100; i++) cases.Add(($"seed 9001 #{i} truncated", original.AsSpan(0, rng.Next(original.Length)).ToArray()));
        foreach ((string label, byte[] bytes) in cases) Run(run, path, label, bytes, GemmaTokenizer.FromTokenizerJson);
        run.AssertNoDefects(2000);
    }

    [Test]
    public void GzipTokenizerJson()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        byte[] original = Gzip(SyntheticTokenizerJson());
        var run = new FuzzRun($"tokenizer.json.gz ({original.Length} B)");
        var rng = new Random(9301);
        var cases = new List<(string, byte[])>();
        for (int n = 0; n < original.Length; n += 7) cases.Add(($"first {n} bytes", original.AsSpan(0, n).ToArray()));
        for (int i = 0; i < 300; i++) cases.Add(($"seed 9301 #{i} bit flips", Mutate.FlipBits(original, rng, 0, original.Length, 1 + rng.Next(3))));
        // Gzip bombs: 200 MB of spaces (about 200 KB compressed) and a valid tokenizer followed by 50 MB of spaces.
        cases.Add(("200 MB of spaces", Gzip(new byte[200 << 20].Select(_ => (byte)' ').ToArray())));
        cases.Add(("tokenizer + 50 MB of spaces", Gzip([.. SyntheticTokenizerJson(), .. Enumerable.Repeat((byte)' ', 50 << 20)])));
        foreach ((string label, byte[] bytes) in cases) Run(run, path, label, bytes, GemmaTokenizer.FromTokenizerJson);
        run.AssertNoDefects(500);
    }

    private static byte[] Gzip(byte[] bytes)
    {
        var output = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Optimal)) gzip.Write(bytes);
        return output.ToArray();
    }

    [Test]
    public void DemoModelTokenizerJson()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.json");
        byte[] original = File.ReadAllBytes(Path.Combine(Fixtures.DemoModel, "tokenizer.json"));
        var run = new FuzzRun("tokenizer.json (demo model, 370 KB)");
        var rng = new Random(9101);
        var cases = new JsonMutator(original).Cases(9102, 150).ToList();
        for (int i = 0; i < 40; i++) cases.Add(($"seed 9101 #{i} bit flips", Mutate.FlipBits(original, rng, 0, original.Length, 1 + rng.Next(3))));
        for (int i = 0; i < 10; i++) cases.Add(($"seed 9101 #{i} truncated", original.AsSpan(0, rng.Next(original.Length)).ToArray()));
        foreach ((string label, byte[] bytes) in cases) Run(run, path, label, bytes, GemmaTokenizer.FromTokenizerJson);
        run.AssertNoDefects(200);
    }

    /// <summary>A small SentencePiece BPE model: specials, byte pieces and scored normal pieces.</summary>
    internal static byte[] SyntheticSentencePieceModel()
    {
        var model = new MemoryStream();
        void Piece(string text, float score, int type)
        {
            var entry = new MemoryStream();
            Bytes(entry, 1, Encoding.UTF8.GetBytes(text));
            Key(entry, 2, 5);
            entry.Write(BitConverter.GetBytes(score));
            Varint(entry, 3, type);
            Bytes(model, 1, entry.ToArray());
        }
        Piece("<pad>", 0, 3); Piece("<eos>", 0, 3); Piece("<bos>", 0, 3); Piece("<unk>", 0, 2);
        for (int b = 0; b < 256; b++) Piece($"<0x{b:X2}>", 0, 6);
        string[] normals = ["▁", "t", "h", "e", "a", "n", "d", "▁t", "he", "▁the", "an", "and", "▁and", "パ", "ッ", "パッ"];
        for (int i = 0; i < normals.Length; i++) Piece(normals[i], -i, 1);
        var trainer = new MemoryStream();
        Varint(trainer, 3, 2); Varint(trainer, 35, 1); Varint(trainer, 40, 3); Varint(trainer, 41, 2); Varint(trainer, 42, 1); Varint(trainer, 43, 0);
        Bytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        Bytes(normalizer, 1, "identity"u8.ToArray()); Varint(normalizer, 3, 0); Varint(normalizer, 4, 0);
        Bytes(model, 3, normalizer.ToArray());
        return model.ToArray();

        static void Key(Stream s, int field, int wire) => Raw(s, (ulong)(field << 3 | wire));
        static void Varint(Stream s, int field, int value) { Key(s, field, 0); Raw(s, (ulong)(long)value); }
        static void Bytes(Stream s, int field, byte[] b) { Key(s, field, 2); Raw(s, (ulong)b.Length); s.Write(b); }
        static void Raw(Stream s, ulong v) { while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; } s.WriteByte((byte)v); }
    }

    [Test]
    public void SentencePieceModel()
    {
        using var dir = new Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tokenizer.model");
        byte[] original = SyntheticSentencePieceModel();
        File.WriteAllBytes(path, original);
        var reference = GemmaTokenizer.FromSentencePieceModel(path);
        Assert.That(reference.Decode(reference.EncodeToIds("the and パッ", addBos: false)), Is.EqualTo("the and パッ"), "fixture sanity");

        var run = new FuzzRun($"tokenizer.model ({original.Length} B)");
        var rng = new Random(9201);
        var cases = new List<(string, byte[])>();
        for (int n = 0; n < original.Length; n++) cases.Add(($"first {n} bytes", original.AsSpan(0, n).ToArray()));
        for (int i = 0; i < 1200; i++) cases.Add(($"seed 9201 #{i} bit flips", Mutate.FlipBits(original, rng, 0, original.Length, 1 + rng.Next(3))));
        for (int i = 0; i < 600; i++) cases.Add(($"seed 9201 #{i} bytes set", Mutate.SetBytes(original, rng, 0, original.Length, 1 + rng.Next(3))));
        byte[][] varints = [[0xFF, 0xFF, 0xFF, 0xFF, 0x0F], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Enumerable.Repeat((byte)0xFF, 12).ToArray(), [0x80], [0x00]];
        for (int i = 0; i < 300; i++)
        {
            int at = rng.Next(original.Length);
            byte[] v = varints[rng.Next(varints.Length)];
            cases.Add(($"seed 9201 #{i} varint {Convert.ToHexString(v)} at {at}", Mutate.Splice(original, at, rng.Next(2) * Math.Min(v.Length, original.Length - at), v)));
        }
        foreach ((string label, byte[] bytes) in cases) Run(run, path, label, bytes, GemmaTokenizer.FromSentencePieceModel);
        run.AssertNoDefects(5000);
    }
}
