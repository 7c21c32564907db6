using System.Text;

namespace Gemma.Fuzz;

/// <summary>Small valid seed inputs for the tokenizer targets (a fuzzer mutates small files far faster).</summary>
internal static class Seeds
{
    private static readonly string[] Specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"];
    private static readonly string[] Merges = ["▁ t", "h e", "▁t he", "i n", "▁ a", "a n", "an d", "▁a nd", "e r"];

    /// <summary>A Gemma-shaped tokenizer.json: specials, 256 byte pieces, a few merges.</summary>
    public static byte[] TokenizerJson()
    {
        var vocab = new List<string>(Specials);
        for (int b = 0; b < 256; b++) vocab.Add($"<0x{b:X2}>");
        foreach (string m in Merges)
            foreach (string piece in m.Split(' ').Append(m.Replace(" ", "")))
                if (!vocab.Contains(piece)) vocab.Add(piece);
        string Quote(string s) => "\"" + s + "\"";
        var json = new StringBuilder("{\"version\":\"1.0\",\"added_tokens\":[");
        json.AppendJoin(",", Specials.Select((s, i) => $"{{\"id\":{i},\"content\":{Quote(s)},\"special\":true,\"normalized\":false}}"));
        json.Append("],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"},");
        json.Append("\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"MergedWithPrevious\"},");
        json.Append("\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{");
        json.AppendJoin(",", vocab.Select((p, i) => $"{Quote(p)}:{i}"));
        json.Append("},\"merges\":[").AppendJoin(",", Merges.Select(Quote)).Append("]}}");
        return Encoding.UTF8.GetBytes(json.ToString());
    }

    /// <summary>A SentencePiece BPE tokenizer.model (protobuf) with the same kind of vocabulary.</summary>
    public static byte[] SentencePieceModel()
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
        string[] normals = ["▁", "t", "h", "e", "a", "n", "d", "▁t", "he", "▁the", "an", "and", "▁and"];
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
}
