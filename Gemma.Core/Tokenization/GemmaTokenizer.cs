using System.Buffers;
using System.Text;

namespace Gemma.Core.Tokenization;

/// <summary>
/// The Gemma tokenizer: SentencePiece-style BPE with byte fallback, giving the same ids as Hugging Face
/// <c>tokenizers</c> on Gemma's <c>tokenizer.json</c>. Build it with <see cref="FromTokenizerJson(string)"/>,
/// <see cref="FromSentencePieceModel(string)"/>, <see cref="FromModelDirectory"/> or, for GGUF,
/// <see cref="FromVocabulary"/>. Instances are immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// Encoding: added tokens (control tokens such as <c>&lt;start_of_turn&gt;</c>, user-defined pieces such as
/// <c>&lt;table&gt;</c> or newline runs) are matched in the raw text first; the text between them has its spaces
/// replaced by '▁' and goes through BPE as one word (Gemma has no pre-tokenizer split and no dummy prefix).
/// Lone UTF-16 surrogates in the input are encoded as U+FFFD, the character any UTF-8 conversion would give them.
/// </remarks>
public sealed partial class GemmaTokenizer
{
    private const char Metaspace = '\u2581'; // '▁'

    private readonly string[] _pieces;
    private readonly GemmaTokenType[] _types;
    private readonly Dictionary<string, int> _ids;
    private readonly BpeMerger _bpe;
    private readonly AddedTokenMatcher _added;
    private readonly byte[] _utf8;       // decoded bytes of every piece, back to back ('▁' -> ' ', <0xXX> -> one byte)
    private readonly int[] _utf8Offsets;
    private float[] _scores;             // SentencePiece-style score by id (see GetScore) // (VocabularySize + 1) start of each piece's bytes in _utf8

    private static readonly byte[] ReplacementUtf8 = [0xEF, 0xBF, 0xBD]; // U+FFFD

    private GemmaTokenizer(string source, string[] pieces, GemmaTokenType[] types, Dictionary<long, long> merges,
        bool byteFallback, bool fuseUnknown, int bosId, int eosId, int unknownId, int padId)
    {
        Source = source;
        _pieces = pieces;
        _types = types;
        _ids = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        var byteIds = new int[256];
        Array.Fill(byteIds, -1);
        for (int id = 0; id < pieces.Length; id++)
        {
            _ids.TryAdd(pieces[id], id);
            if (types[id] == GemmaTokenType.Byte && TryParseBytePiece(pieces[id], out byte b)) byteIds[b] = id;
        }

        BosId = bosId;
        EosId = eosId;
        UnknownId = unknownId;
        PadId = padId;
        StartOfTurnId = _ids.GetValueOrDefault("<start_of_turn>", -1);
        EndOfTurnId = _ids.GetValueOrDefault("<end_of_turn>", -1);
        // The ids the chat structure relies on are control tokens whatever the source says: a SentencePiece model or
        // GGUF that marks <start_of_turn> as user-defined would otherwise let typed text forge a turn.
        foreach (int id in (ReadOnlySpan<int>)[bosId, eosId, padId, StartOfTurnId, EndOfTurnId])
        {
            if (id >= 0 && types[id] != GemmaTokenType.Unknown) types[id] = GemmaTokenType.Control;
        }
        if (unknownId >= 0) types[unknownId] = GemmaTokenType.Unknown;

        _scores = DeriveScores(merges, pieces.Length, types);
        _bpe = new BpeMerger(_ids, merges, byteIds, unknownId, byteFallback, fuseUnknown);
        _added = new AddedTokenMatcher(Enumerable.Range(0, pieces.Length)
            .Where(id => types[id] is GemmaTokenType.Control or GemmaTokenType.Unknown or GemmaTokenType.UserDefined)
            .Select(id => (pieces[id], id, types[id] != GemmaTokenType.UserDefined)));
        (_utf8, _utf8Offsets) = BuildDecodeTable(pieces, types);
    }

    /// <summary>The file (or description) the vocabulary came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Number of ids; valid ids are <c>0 .. VocabularySize - 1</c>.</summary>
    public int VocabularySize => _pieces.Length;

    /// <summary>Number of BPE merge rules in use.</summary>
    public int MergeCount => _bpe.MergeCount;

    /// <summary>Id of <c>&lt;bos&gt;</c>, added at the start of every prompt.</summary>
    public int BosId { get; }

    /// <summary>Id of <c>&lt;eos&gt;</c>.</summary>
    public int EosId { get; }

    /// <summary>Id of <c>&lt;unk&gt;</c>, or -1.</summary>
    public int UnknownId { get; }

    /// <summary>Id of <c>&lt;pad&gt;</c>, or -1.</summary>
    public int PadId { get; }

    /// <summary>Id of <c>&lt;start_of_turn&gt;</c>, or -1 if the vocabulary has none.</summary>
    public int StartOfTurnId { get; }

    /// <summary>Id of <c>&lt;end_of_turn&gt;</c> (the chat model's second stop token), or -1 if the vocabulary has none.</summary>
    public int EndOfTurnId { get; }

    /// <summary>Looks up the id of a vocabulary piece (exact, e.g. <c>"▁world"</c> or <c>"&lt;0xE3&gt;"</c>).</summary>
    public bool TryGetId(string piece, out int id)
    {
        ArgumentNullException.ThrowIfNull(piece);
        return _ids.TryGetValue(piece, out id);
    }

    /// <summary>The vocabulary piece of an id, as stored (with '▁', <c>&lt;0xXX&gt;</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string GetPiece(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, VocabularySize);
        return _pieces[id];
    }

    /// <summary>The kind of an id's piece.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public GemmaTokenType GetTokenType(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, VocabularySize);
        return _types[id];
    }

    /// <summary>True for control and unknown pieces (the ones <c>skipControlTokens</c> leaves out of text).</summary>
    public bool IsControl(int id) =>
        (uint)id < (uint)_types.Length && _types[id] is GemmaTokenType.Control or GemmaTokenType.Unknown;

    /// <summary>
    /// Encodes text the way Hugging Face <c>tokenizer.encode</c> does: control-token text such as
    /// <c>&lt;start_of_turn&gt;</c> inside <paramref name="text"/> becomes the control id. Use the overload with
    /// <c>parseControlTokens: false</c> for text typed by a user (the chat template does).
    /// </summary>
    public int[] EncodeToIds(string text, bool addBos) => EncodeToIds(text, addBos, parseControlTokens: true);

    /// <summary>Encodes text, optionally prefixed with <see cref="BosId"/>.</summary>
    /// <param name="text">Any string; empty gives no ids (or just BOS). Lone surrogates are encoded as U+FFFD.</param>
    /// <param name="addBos">Put <see cref="BosId"/> first.</param>
    /// <param name="parseControlTokens">When false, control-token text is ordinary text and gets ordinary pieces;
    /// user-defined pieces (<c>&lt;table&gt;</c>, newline runs) are matched either way.</param>
    public int[] EncodeToIds(string text, bool addBos, bool parseControlTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 2 + 2);
        if (addBos) ids.Add(BosId);
        Encode(text, ids, parseControlTokens);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="destination"/> (no BOS).</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> destination, bool parseControlTokens)
    {
        ArgumentNullException.ThrowIfNull(destination);
        char[]? rented = null;
        try
        {
            if (text.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0) text = ReplaceLoneSurrogates(text, out rented);
            int pos = 0;
            while (pos < text.Length)
            {
                int at = _added.FindNext(text, pos, parseControlTokens, out int length, out int id);
                int end = at < 0 ? text.Length : at;
                if (end > pos) EncodeSegment(text[pos..end], destination);
                if (at < 0) break;
                destination.Add(id);
                pos = at + length;
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>Normalizer (' ' -> '▁') then BPE on one stretch of text without added tokens.</summary>
    private void EncodeSegment(ReadOnlySpan<char> segment, List<int> destination)
    {
        char[] buffer = ArrayPool<char>.Shared.Rent(segment.Length);
        try
        {
            var normalized = buffer.AsSpan(0, segment.Length);
            segment.Replace(normalized, ' ', Metaspace);
            _bpe.Encode(normalized, destination);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static ReadOnlySpan<char> ReplaceLoneSurrogates(ReadOnlySpan<char> text, out char[] rented)
    {
        rented = ArrayPool<char>.Shared.Rent(text.Length);
        var fixedText = rented.AsSpan(0, text.Length);
        text.CopyTo(fixedText);
        for (int i = 0; i < fixedText.Length; i++)
        {
            if (char.IsHighSurrogate(fixedText[i]) && i + 1 < fixedText.Length && char.IsLowSurrogate(fixedText[i + 1])) i++;
            else if (char.IsSurrogate(fixedText[i])) fixedText[i] = '\uFFFD';
        }
        return fixedText;
    }

    /// <summary>
    /// Decodes ids to text like Hugging Face <c>decode(ids)</c> (control tokens kept as their text):
    /// '▁' becomes a space, runs of byte pieces become the characters they spell. Ids outside the vocabulary decode
    /// to U+FFFD; byte runs that are not valid UTF-8 decode to U+FFFD per maximal invalid subsequence (the
    /// Unicode/.NET rule, which the streaming detokenizer can reproduce exactly; HF writes one U+FFFD per byte).
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids) => Decode(ids, skipControlTokens: false);

    /// <summary>Decodes ids to text; with <paramref name="skipControlTokens"/> control and unknown pieces are left out.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipControlTokens)
    {
        int total = 0;
        foreach (int id in ids) total += GetUtf8(id, skipControlTokens).Length;
        byte[] bytes = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            int at = 0;
            foreach (int id in ids)
            {
                var piece = GetUtf8(id, skipControlTokens);
                piece.CopyTo(bytes.AsSpan(at));
                at += piece.Length;
            }
            return Encoding.UTF8.GetString(bytes, 0, total);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>The UTF-8 bytes an id contributes to decoded text (U+FFFD for an id outside the vocabulary).</summary>
    internal ReadOnlySpan<byte> GetUtf8(int id, bool skipControlTokens)
    {
        if ((uint)id >= (uint)_pieces.Length) return ReplacementUtf8;
        if (skipControlTokens && IsControl(id)) return default;
        return _utf8.AsSpan(_utf8Offsets[id], _utf8Offsets[id + 1] - _utf8Offsets[id]);
    }

    private static (byte[] Bytes, int[] Offsets) BuildDecodeTable(string[] pieces, GemmaTokenType[] types)
    {
        var offsets = new int[pieces.Length + 1];
        var buffer = new ArrayBufferWriter<byte>(pieces.Length * 8);
        for (int id = 0; id < pieces.Length; id++)
        {
            offsets[id] = buffer.WrittenCount;
            if (types[id] == GemmaTokenType.Byte && TryParseBytePiece(pieces[id], out byte b))
            {
                buffer.GetSpan(1)[0] = b;
                buffer.Advance(1);
            }
            else
            {
                string text = pieces[id].Replace(Metaspace, ' ');
                buffer.Advance(Encoding.UTF8.GetBytes(text, buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length))));
            }
        }
        offsets[pieces.Length] = buffer.WrittenCount;
        return (buffer.WrittenSpan.ToArray(), offsets);
    }

    /// <summary>Parses <c>&lt;0xXX&gt;</c> (two hex digits, the form SentencePiece and HF write).</summary>
    internal static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }
}
