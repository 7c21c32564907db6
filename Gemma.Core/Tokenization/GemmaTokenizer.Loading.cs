using System.IO.Compression;
using System.Text.Json;

namespace Gemma.Core.Tokenization;

public sealed partial class GemmaTokenizer
{
    /// <summary>
    /// Loads the tokenizer of a model folder: <c>tokenizer.json</c> if present (the exact Hugging Face reference),
    /// otherwise <c>tokenizer.model</c> (SentencePiece).
    /// </summary>
    /// <exception cref="GemmaException">Neither file exists, or the file is not a Gemma tokenizer.</exception>
    public static GemmaTokenizer FromModelDirectory(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (!Directory.Exists(dir)) throw new GemmaException($"Model directory '{dir}' does not exist.");
        string json = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(json);
        string model = Path.Combine(dir, "tokenizer.model");
        if (File.Exists(model)) return FromSentencePieceModel(model);
        throw new GemmaException($"Model directory '{dir}' has neither tokenizer.json nor tokenizer.model.");
    }

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c> (a gzip-compressed file is accepted too).</summary>
    /// <exception cref="GemmaException">The file is missing, is not JSON, or is not a BPE byte-fallback tokenizer.</exception>
    public static GemmaTokenizer FromTokenizerJson(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenFile(path);
        return FromTokenizerJson(stream, path);
    }

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c> from a stream (gzip is detected and decompressed).</summary>
    /// <param name="stream">The JSON, plain or gzip.</param>
    /// <param name="sourceName">Name used in error messages.</param>
    public static GemmaTokenizer FromTokenizerJson(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] bytes = ReadAll(stream, sourceName);
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 256 });
            return TokenizerJsonReader.Read(doc.RootElement, sourceName);
        }
        catch (JsonException e)
        {
            throw new GemmaException($"Tokenizer file '{sourceName}' is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException) // a JsonElement of an unexpected kind or range
        {
            throw new GemmaException($"Tokenizer file '{sourceName}' has an unexpected structure: {e.Message}", e);
        }
    }

    /// <summary>Loads a SentencePiece <c>tokenizer.model</c> (protobuf, BPE model type).</summary>
    /// <exception cref="GemmaException">The file is missing, is not a SentencePiece model, or uses an unsupported mode.</exception>
    public static GemmaTokenizer FromSentencePieceModel(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenFile(path);
        return FromSentencePieceModel(stream, path);
    }

    /// <summary>Loads a SentencePiece model from a stream.</summary>
    public static GemmaTokenizer FromSentencePieceModel(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var model = SentencePieceModelReader.Read(ReadAll(stream, sourceName), sourceName);
        return FromVocabulary(model.Pieces, model.Scores, model.Types, model.BosId, model.EosId, model.UnknownId,
            model.PadId, sourceName);
    }

    /// <summary>
    /// Builds a tokenizer from a SentencePiece-style vocabulary: the form GGUF stores in <c>tokenizer.ggml.tokens</c>,
    /// <c>tokenizer.ggml.scores</c> and <c>tokenizer.ggml.token_type</c>. Merge priority follows SentencePiece BPE:
    /// two adjacent symbols may merge when their concatenation is a normal or user-defined piece, the highest
    /// score first, the leftmost on ties.
    /// </summary>
    /// <param name="pieces">Piece text by id.</param>
    /// <param name="scores">Score by id (higher merges first).</param>
    /// <param name="tokenTypes">Token type by id, numbered as <see cref="GemmaTokenType"/>.</param>
    /// <param name="bosId">Id of <c>&lt;bos&gt;</c>.</param>
    /// <param name="eosId">Id of <c>&lt;eos&gt;</c>.</param>
    /// <param name="unknownId">Id of <c>&lt;unk&gt;</c>, or -1.</param>
    /// <param name="padId">Id of <c>&lt;pad&gt;</c>, or -1.</param>
    /// <param name="sourceName">Name used in error messages.</param>
    /// <exception cref="GemmaException">Lengths differ, a type is unknown, or a special id is out of range.</exception>
    public static GemmaTokenizer FromVocabulary(IReadOnlyList<string> pieces, IReadOnlyList<float> scores,
        IReadOnlyList<int> tokenTypes, int bosId, int eosId, int unknownId = -1, int padId = -1,
        string sourceName = "vocabulary")
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(tokenTypes);
        int n = pieces.Count;
        if (n == 0) throw new GemmaException($"Tokenizer '{sourceName}': the vocabulary is empty.");
        if (scores.Count != n || tokenTypes.Count != n)
            throw new GemmaException($"Tokenizer '{sourceName}': {n} pieces but {scores.Count} scores and {tokenTypes.Count} token types.");
        var types = new GemmaTokenType[n];
        var array = new string[n];
        for (int id = 0; id < n; id++)
        {
            if (tokenTypes[id] is < 1 or > 6)
                throw new GemmaException($"Tokenizer '{sourceName}': token {id} has unknown type {tokenTypes[id]}.");
            array[id] = pieces[id] ?? throw new GemmaException($"Tokenizer '{sourceName}': token {id} has no text.");
            types[id] = (GemmaTokenType)tokenTypes[id];
        }
        CheckSpecialIds(sourceName, n, bosId, eosId, unknownId, padId);
        var merges = BuildMergesFromScores(array, scores, types);
        bool byteFallback = types.Contains(GemmaTokenType.Byte);
        return new GemmaTokenizer(sourceName, array, types, merges, byteFallback, fuseUnknown: true, bosId, eosId,
            unknownId, padId) { _scores = scores.ToArray() };
    }

    /// <summary>
    /// Derives merge rules from scores: every split of a mergeable piece into two vocabulary pieces is a rule,
    /// ranked by the piece's score (equal scores share a rank, so the leftmost pair wins, as in SentencePiece).
    /// </summary>
    private static Dictionary<long, long> BuildMergesFromScores(string[] pieces, IReadOnlyList<float> scores,
        GemmaTokenType[] types)
    {
        var lookup = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        for (int id = 0; id < pieces.Length; id++) lookup.TryAdd(pieces[id], id);
        var spans = lookup.GetAlternateLookup<ReadOnlySpan<char>>();

        var candidates = Enumerable.Range(0, pieces.Length)
            .Where(id => types[id] is GemmaTokenType.Normal or GemmaTokenType.UserDefined && pieces[id].Length > 1)
            .OrderByDescending(id => scores[id]).ThenBy(id => id)
            .ToArray();
        var merges = BpeMerger.CreateMergeTable(candidates.Length * 2);
        int rank = -1;
        float previous = float.NaN;
        foreach (int id in candidates)
        {
            if (scores[id] != previous) { rank++; previous = scores[id]; }
            var piece = pieces[id].AsSpan();
            for (int k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k]) && char.IsHighSurrogate(piece[k - 1])) continue;
                if (spans.TryGetValue(piece[..k], out int left) && spans.TryGetValue(piece[k..], out int right))
                    merges.TryAdd(BpeMerger.Pack(left, right), BpeMerger.Pack(rank, id));
            }
        }
        return merges;
    }

    private static void CheckSpecialIds(string source, int n, int bosId, int eosId, int unknownId, int padId)
    {
        if ((uint)bosId >= (uint)n) throw new GemmaException($"Tokenizer '{source}': BOS id {bosId} is outside the vocabulary of {n}.");
        if ((uint)eosId >= (uint)n) throw new GemmaException($"Tokenizer '{source}': EOS id {eosId} is outside the vocabulary of {n}.");
        if (unknownId < -1 || unknownId >= n) throw new GemmaException($"Tokenizer '{source}': unknown-token id {unknownId} is outside the vocabulary of {n}.");
        if (padId < -1 || padId >= n) throw new GemmaException($"Tokenizer '{source}': pad id {padId} is outside the vocabulary of {n}.");
    }

    /// <summary>Used by the tokenizer.json reader, which has ranked merges instead of scores.</summary>
    internal static GemmaTokenizer Create(string source, string[] pieces, GemmaTokenType[] types,
        Dictionary<long, long> merges, bool byteFallback, bool fuseUnknown, int bosId, int eosId, int unknownId, int padId)
    {
        CheckSpecialIds(source, pieces.Length, bosId, eosId, unknownId, padId);
        return new GemmaTokenizer(source, pieces, types, merges, byteFallback, fuseUnknown, bosId, eosId, unknownId, padId);
    }

    private static FileStream OpenFile(string path)
    {
        try
        {
            return File.OpenRead(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new GemmaException($"Cannot open tokenizer file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Most a gzip-compressed tokenizer file may expand (plus 1 MiB).</summary>
    private const long MaxGzipExpansion = 16;

    /// <summary>Reads a whole stream, transparently un-gzipping it (magic bytes 1F 8B).</summary>
    private static byte[] ReadAll(Stream stream, string sourceName)
    {
        try
        {
            var raw = new MemoryStream();
            stream.CopyTo(raw);
            byte[] bytes = raw.ToArray();
            if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return bytes;
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            var plain = new MemoryStream(bytes.Length * 3);
            // A tokenizer.json compresses about 3:1; refuse a "gzip bomb" before it fills memory.
            long limit = MaxGzipExpansion * bytes.Length + (1 << 20);
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = gzip.Read(buffer)) > 0;)
            {
                plain.Write(buffer, 0, n);
                if (plain.Length > limit)
                    throw new GemmaException($"Tokenizer file '{sourceName}' expands to more than {limit} bytes ({MaxGzipExpansion} times its size) when decompressed.");
            }
            return plain.ToArray();
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new GemmaException($"Cannot read tokenizer file '{sourceName}': {e.Message}", e);
        }
    }
}
