using System.Text;
using System.Text.Json;
using Gemma.Core.Tokenization;

namespace Gemma.Tests.Tokenization;

/// <summary>
/// Test helper: writes the SentencePiece <c>tokenizer.model</c> (protobuf) that a Gemma <c>tokenizer.json</c> came
/// from — pieces in id order, their types, and scores that order merges like the JSON's merge list (a piece's score is
/// minus the rank of its first merge; user-defined, control and byte pieces score 0, as SentencePiece writes them).
/// Independent of the library's reader: the scores come straight from the JSON.
/// </summary>
internal static class SentencePieceModelWriter
{
    public static byte[] FromTokenizerJson(GemmaTokenizer tokenizer, string tokenizerJsonPath)
    {
        using var gz = new System.IO.Compression.GZipStream(File.OpenRead(tokenizerJsonPath), System.IO.Compression.CompressionMode.Decompress);
        using var doc = JsonDocument.Parse(gz);
        var vocab = doc.RootElement.GetProperty("model").GetProperty("vocab");
        var firstRank = new Dictionary<string, int>();
        int rank = 0;
        foreach (var m in doc.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray())
        {
            string merged = m.GetString()!.Replace(" ", "");
            firstRank.TryAdd(merged, rank++);
        }

        var model = new MemoryStream();
        for (int id = 0; id < tokenizer.VocabularySize; id++)
        {
            string piece = tokenizer.GetPiece(id);
            var type = tokenizer.GetTokenType(id);
            float score = type == GemmaTokenType.Normal ? (firstRank.TryGetValue(piece, out int r) ? -1 - r : -1e7f - id) : 0f;
            var entry = new MemoryStream();
            WriteBytes(entry, 1, Encoding.UTF8.GetBytes(piece));
            WriteKey(entry, 2, 5);
            entry.Write(BitConverter.GetBytes(score));
            WriteVarintField(entry, 3, (int)type);
            WriteBytes(model, 1, entry.ToArray());
        }
        var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 2);  // model_type BPE
        WriteVarintField(trainer, 35, 1); // byte_fallback
        WriteVarintField(trainer, 40, tokenizer.UnknownId);
        WriteVarintField(trainer, 41, tokenizer.BosId);
        WriteVarintField(trainer, 42, tokenizer.EosId);
        WriteVarintField(trainer, 43, tokenizer.PadId);
        WriteBytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        WriteBytes(normalizer, 1, "identity"u8.ToArray());
        WriteVarintField(normalizer, 3, 0); // add_dummy_prefix
        WriteVarintField(normalizer, 4, 0); // remove_extra_whitespaces
        WriteVarintField(normalizer, 5, 1); // escape_whitespaces
        WriteBytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    private static void WriteKey(Stream s, int field, int wire) => WriteVarint(s, (ulong)(field << 3 | wire));

    private static void WriteVarintField(Stream s, int field, int value)
    {
        WriteKey(s, field, 0);
        WriteVarint(s, (ulong)(long)value); // negative int32 -> 10-byte two's complement, as protobuf does
    }

    private static void WriteBytes(Stream s, int field, byte[] bytes)
    {
        WriteKey(s, field, 2);
        WriteVarint(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }
}
