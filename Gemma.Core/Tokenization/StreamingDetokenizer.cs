using System.Text;

namespace Gemma.Core.Tokenization;

/// <summary>
/// Turns ids into text as they are generated. Each <see cref="Append"/> returns only text that is complete: a
/// character spelled by several byte-fallback pieces (<c>&lt;0xE3&gt;&lt;0x81&gt;&lt;0x82&gt;</c> = "あ") comes out
/// whole when its last byte arrives, never as a broken UTF-8 sequence; '▁' comes out as a space. Call
/// <see cref="Flush"/> at the end of a stream. The concatenation of all outputs equals
/// <see cref="GemmaTokenizer.Decode(ReadOnlySpan{int}, bool)"/> of all ids with the same <c>skipControlTokens</c>.
/// </summary>
/// <remarks>
/// Allocation-free per token once its buffer has grown to the longest piece. Not thread-safe: one per stream.
/// Ids outside the vocabulary give U+FFFD, like <see cref="GemmaTokenizer.Decode(ReadOnlySpan{int})"/>.
/// </remarks>
public sealed class StreamingDetokenizer
{
    private readonly GemmaTokenizer _tokenizer;
    private readonly bool _skipControlTokens;
    private readonly Decoder _decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    /// <summary>Creates a detokenizer for one stream of ids.</summary>
    /// <param name="tokenizer">The tokenizer whose ids are streamed.</param>
    /// <param name="skipControlTokens">Leave control tokens (<c>&lt;end_of_turn&gt;</c>, ...) out of the text; the default,
    /// as generated text is shown to a user.</param>
    public StreamingDetokenizer(GemmaTokenizer tokenizer, bool skipControlTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _skipControlTokens = skipControlTokens;
    }

    /// <summary>
    /// Feeds one id; returns the text completed by it (often empty while a multi-byte character is pending).
    /// The span is valid until the next call on this instance.
    /// </summary>
    public ReadOnlySpan<char> Append(int id)
    {
        var bytes = _tokenizer.GetUtf8(id, _skipControlTokens);
        if (bytes.IsEmpty) return default;
        // At most one char per byte plus the pending bytes of the previous call (< 4) turned into U+FFFD.
        EnsureCapacity(bytes.Length + 4);
        int n = _decoder.GetChars(bytes, _chars, flush: false);
        return _chars.AsSpan(0, n);
    }

    /// <summary>Feeds one id and returns the completed text as a string (allocates; convenience).</summary>
    public string AppendToString(int id) => new(Append(id));

    /// <summary>
    /// Ends the stream: bytes of an unfinished character come out as U+FFFD. The detokenizer is then ready for a
    /// new stream.
    /// </summary>
    public ReadOnlySpan<char> Flush()
    {
        EnsureCapacity(8);
        int n = _decoder.GetChars(ReadOnlySpan<byte>.Empty, _chars, flush: true);
        return _chars.AsSpan(0, n);
    }

    /// <summary>Drops any pending bytes and starts a new stream.</summary>
    public void Reset() => _decoder.Reset();

    private void EnsureCapacity(int length)
    {
        if (_chars.Length < length) _chars = new char[Math.Max(length, _chars.Length * 2)];
    }
}
