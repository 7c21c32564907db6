using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Gemma.Core.Tokenization;

/// <summary>
/// Reads the parts of a Hugging Face <c>tokenizer.json</c> that a Gemma tokenizer uses and checks that the rest
/// is the Gemma shape (BPE, byte fallback, normalizer Replace ' ' -> '▁', no splitting pre-tokenizer), so that a
/// tokenizer we would encode differently is refused rather than silently mis-encoded.
/// </summary>
internal static class TokenizerJsonReader
{
    public static GemmaTokenizer Read(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model))
            throw Fail(source, "has no \"model\" object");
        string? type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BPE") throw Fail(source, $"model type is '{type ?? "missing"}', only BPE is supported");
        if (OptionalString(model, "continuing_subword_prefix") is { Length: > 0 } || OptionalString(model, "end_of_word_suffix") is { Length: > 0 })
            throw Fail(source, "uses continuing_subword_prefix/end_of_word_suffix, which Gemma does not");
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            throw Fail(source, "uses BPE dropout, which is not deterministic");
        if (model.TryGetProperty("ignore_merges", out var ignore) && ignore.ValueKind == JsonValueKind.True)
            throw Fail(source, "sets ignore_merges, which Gemma does not");
        CheckNormalizer(root, source);
        CheckPreTokenizer(root, source);

        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        bool fuseUnknown = model.TryGetProperty("fuse_unk", out var fu) && fu.ValueKind == JsonValueKind.True;

        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw Fail(source, "has no model.vocab object");
        var entries = new List<(string Piece, int Id)>(vocab.GetPropertyCount());
        foreach (var p in vocab.EnumerateObject()) entries.Add((p.Name, p.Value.GetInt32()));
        var added = new List<(string Piece, int Id, bool Special)>();
        if (root.TryGetProperty("added_tokens", out var addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in addedTokens.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object || !a.TryGetProperty("content", out var contentElement) || !a.TryGetProperty("id", out var idElement))
                    throw Fail(source, "has an added token without content or id");
                string content = contentElement.GetString() ?? throw Fail(source, "has an added token without content");
                bool special = a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                // We match added tokens in the raw text. A normalized one is matched by HF in the normalized text, which
                // differs from the raw text only where ' ' became '▁': refuse the tokens for which that matters.
                if (a.TryGetProperty("normalized", out var norm) && norm.ValueKind == JsonValueKind.True && content.AsSpan().IndexOfAny(' ', '\u2581') >= 0)
                    throw Fail(source, $"has added token '{content}' that is normalized and contains a space or '▁', which is not supported");
                added.Add((content, idElement.GetInt32(), special));
            }
        }

        long largest = -1;
        foreach (var (_, id) in entries) largest = Math.Max(largest, id);
        foreach (var (_, id, _) in added) largest = Math.Max(largest, id);
        if (entries.Count == 0) throw Fail(source, "has an empty vocabulary");
        // Ids are 0..size-1 without gaps, so size is at most the number of entries: find the gap before allocating by a huge id.
        int count = entries.Count + added.Count;
        if (largest >= count)
        {
            var seen = new bool[count];
            foreach (var (_, id) in entries) if ((uint)id < (uint)count) seen[id] = true;
            foreach (var (_, id, _) in added) if ((uint)id < (uint)count) seen[id] = true;
            throw Fail(source, $"has no piece for id {Array.IndexOf(seen, false)} (ids must be 0..{largest} without gaps)");
        }
        int size = (int)largest + 1;
        var pieces = new string[size];
        var types = new GemmaTokenType[size];
        foreach (var (piece, id) in entries)
        {
            if (id < 0) throw Fail(source, $"gives piece '{piece}' the negative id {id}");
            if (pieces[id] is not null) throw Fail(source, $"gives id {id} to both '{pieces[id]}' and '{piece}'");
            pieces[id] = piece;
            types[id] = GemmaTokenizer.TryParseBytePiece(piece, out _) ? GemmaTokenType.Byte : GemmaTokenType.Normal;
        }
        foreach (var (content, id, special) in added)
        {
            if (id < 0) throw Fail(source, $"gives added token '{content}' the negative id {id}");
            if (pieces[id] is not null && pieces[id] != content)
                throw Fail(source, $"gives id {id} to both '{pieces[id]}' and added token '{content}'");
            pieces[id] = content;
            types[id] = special ? (content == "<unk>" ? GemmaTokenType.Unknown : GemmaTokenType.Control) : GemmaTokenType.UserDefined;
        }
        for (int id = 0; id < size; id++)
        {
            if (pieces[id] is null) throw Fail(source, $"has no piece for id {id} (ids must be 0..{size - 1} without gaps)");
        }

        var ids = new Dictionary<string, int>(size, StringComparer.Ordinal);
        for (int id = 0; id < size; id++) ids.TryAdd(pieces[id], id);
        var merges = ReadMerges(model, ids, source);

        string? unkPiece = OptionalString(model, "unk_token");
        int unknownId = unkPiece is null ? -1 : ids.TryGetValue(unkPiece, out int u) ? u : throw Fail(source, $"names unk_token '{unkPiece}', which is not in the vocabulary");
        if (unknownId >= 0) types[unknownId] = GemmaTokenType.Unknown;
        int bosId = ids.GetValueOrDefault("<bos>", -1);
        int eosId = ids.GetValueOrDefault("<eos>", -1);
        if (bosId < 0 || eosId < 0) throw Fail(source, "has no <bos> or <eos> piece");
        return GemmaTokenizer.Create(source, pieces, types, merges, byteFallback, fuseUnknown, bosId, eosId, unknownId,
            ids.GetValueOrDefault("<pad>", -1));
    }

    /// <summary>Merges as "left right" strings (classic) or ["left", "right"] pairs (tokenizers >= 0.20); rank = index.</summary>
    private static Dictionary<long, long> ReadMerges(JsonElement model, Dictionary<string, int> ids, string source)
    {
        if (!model.TryGetProperty("merges", out var list) || list.ValueKind != JsonValueKind.Array)
            throw Fail(source, "has no model.merges array");
        var merges = BpeMerger.CreateMergeTable(list.GetArrayLength());
        var lookup = ids.GetAlternateLookup<ReadOnlySpan<char>>();
        int rank = 0;
        char[] buffer = new char[256];
        foreach (var m in list.EnumerateArray())
        {
            // "left right" as chars in buffer[..length], split at space; both halves are looked up without allocating.
            int length, space;
            if (m.ValueKind == JsonValueKind.String)
            {
                length = ReadChars(m, ref buffer);
                space = buffer.AsSpan(0, length).IndexOf(' ');
                if (space < 0 || buffer.AsSpan(space + 1, length - space - 1).Contains(' '))
                    throw Fail(source, $"has merge {rank} '{m.GetString()}' that is not two pieces");
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                string pair = m[0].GetString() + " " + m[1].GetString();
                space = m[0].GetString()!.Length;
                length = pair.Length;
                if (buffer.Length < length) buffer = new char[length * 2];
                pair.CopyTo(buffer);
            }
            else throw Fail(source, $"has merge {rank} that is neither \"a b\" nor [\"a\", \"b\"]");

            var text = buffer.AsSpan(0, length);
            if (!lookup.TryGetValue(text[..space], out int l) || !lookup.TryGetValue(text[(space + 1)..], out int r))
                throw Fail(source, $"has merge {rank} '{text}' of a piece not in the vocabulary");
            text[(space + 1)..].CopyTo(text[space..]); // drop the space: left + right
            if (!lookup.TryGetValue(text[..(length - 1)], out int id))
                throw Fail(source, $"has merge {rank} whose result '{text[..(length - 1)]}' is not in the vocabulary");
            merges[BpeMerger.Pack(l, r)] = BpeMerger.Pack(rank, id); // a later duplicate wins, as in HF's HashMap collect
            rank++;
        }
        return merges;
    }

    /// <summary>A JSON string's characters into <paramref name="buffer"/> (grown if needed); unescaped text avoids a string.</summary>
    private static int ReadChars(JsonElement element, ref char[] buffer)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element); // with the quotes, still escaped
        if (raw.Length >= 2 && !raw.Contains((byte)'\\'))
        {
            raw = raw[1..^1];
            if (buffer.Length < raw.Length) buffer = new char[raw.Length * 2];
            return Encoding.UTF8.GetChars(raw, buffer);
        }
        string s = element.GetString()!;
        if (buffer.Length < s.Length) buffer = new char[s.Length * 2];
        s.CopyTo(buffer);
        return s.Length;
    }

    private static void CheckNormalizer(JsonElement root, string source)
    {
        if (!root.TryGetProperty("normalizer", out var n) || n.ValueKind == JsonValueKind.Null)
            throw Fail(source, "has no normalizer; Gemma's replaces ' ' with '▁'");
        bool isGemma = OptionalString(n, "type") == "Replace"
            && n.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object
            && OptionalString(p, "String") == " " && OptionalString(n, "content") == "\u2581";
        if (!isGemma) throw Fail(source, $"has normalizer {n.GetRawText()}; only Gemma's Replace(' ' -> '▁') is supported");
    }

    /// <summary>
    /// Gemma's pre-tokenizer is Split(' ', MergedWithPrevious). It runs after the normalizer has turned every ' '
    /// into '▁', so it never finds a space: it is a no-op, and each segment is one BPE word.
    /// </summary>
    private static void CheckPreTokenizer(JsonElement root, string source)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pt) || pt.ValueKind == JsonValueKind.Null) return;
        bool splitOnSpace = OptionalString(pt, "type") == "Split"
            && pt.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object
            && OptionalString(p, "String") == " ";
        if (!splitOnSpace) throw Fail(source, $"has pre_tokenizer {pt.GetRawText()}; only Gemma's Split(' ') is supported");
    }

    private static string? OptionalString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static GemmaException Fail(string source, string problem) => new($"Tokenizer file '{source}' {problem}.");
}
