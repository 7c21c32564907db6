using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Gemma.Core.Tokenization;

public sealed partial class GemmaTokenizer
{
    /// <summary>
    /// This tokenizer as a <see cref="Microsoft.ML.Tokenizers.Tokenizer"/>, for code written against
    /// Microsoft.ML.Tokenizers (token counting, chunking, <c>EncodeToTokens</c> with offsets). Same ids as
    /// <see cref="EncodeToIds(string, bool)"/> without BOS (control-token text is parsed, as HF does).
    /// </summary>
    public Tokenizer AsMLTokenizer() => new GemmaMLTokenizer(this);

    /// <summary>True when the scalar would become &lt;unk&gt; in BPE (not a piece and no byte pieces for it).</summary>
    internal bool IsUnknownScalar(ReadOnlySpan<char> scalar) => _bpe.IsUnknown(scalar);
}

/// <summary>Adapter from <see cref="GemmaTokenizer"/> to Microsoft.ML.Tokenizers' abstract <see cref="Tokenizer"/>.</summary>
internal sealed class GemmaMLTokenizer(GemmaTokenizer tokenizer) : Tokenizer
{
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var source = text is null ? textSpan : text.AsSpan();
        var ids = new List<int>();
        tokenizer.Encode(source, ids, parseControlTokens: true);
        var tokens = WithOffsets(source, ids, settings.MaxTokenCount);
        return new EncodeResults<EncodedToken>
        {
            Tokens = tokens,
            NormalizedText = null,
            CharsConsumed = tokens.Count == ids.Count ? source.Length : tokens.Count == 0 ? 0 : tokens[^1].Offset.End.Value,
        };
    }

    /// <summary>
    /// Recovers each token's character range in the input. Normalization maps one char to one char (' ' -> '▁',
    /// lone surrogate -> U+FFFD), so a normal or added piece covers as many chars as it has; byte pieces all cover the
    /// character they spell (as in HF); a BPE &lt;unk&gt; covers the run of unknown characters it fused.
    /// </summary>
    private List<EncodedToken> WithOffsets(ReadOnlySpan<char> text, List<int> ids, int maxTokens)
    {
        var tokens = new List<EncodedToken>(Math.Min(ids.Count, maxTokens));
        int pos = 0;
        for (int i = 0; i < ids.Count && tokens.Count < maxTokens; i++)
        {
            int id = ids[i];
            string piece = tokenizer.GetPiece(id);
            var type = tokenizer.GetTokenType(id);
            int length;
            if (type == GemmaTokenType.Byte)
            {
                int width = pos + 1 < text.Length && char.IsSurrogatePair(text[pos], text[pos + 1]) ? 2 : 1;
                int byteCount = Encoding.UTF8.GetByteCount(text.Slice(pos, Math.Min(width, text.Length - pos)));
                for (int b = 0; b < byteCount && i < ids.Count && tokens.Count < maxTokens; b++, i++)
                    tokens.Add(new EncodedToken(ids[i], tokenizer.GetPiece(ids[i]), new Range(pos, pos + width)));
                i--;
                pos = Math.Min(text.Length, pos + width);
                continue;
            }
            if (type == GemmaTokenType.Unknown && !text[pos..].StartsWith(piece, StringComparison.Ordinal))
            {
                length = 0;
                while (pos + length < text.Length)
                {
                    int width = char.IsHighSurrogate(text[pos + length]) && pos + length + 1 < text.Length ? 2 : 1;
                    if (!tokenizer.IsUnknownScalar(text.Slice(pos + length, width))) break;
                    length += width;
                }
            }
            else length = piece.Length;
            length = Math.Min(length, text.Length - pos);
            tokens.Add(new EncodedToken(id, piece, new Range(pos, pos + length)));
            pos += length;
        }
        return tokens;
    }

    public override string Decode(IEnumerable<int> ids) => tokenizer.Decode(ids.ToArray());

    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        var detok = new StreamingDetokenizer(tokenizer, skipControlTokens: false);
        idsConsumed = charsWritten = 0;
        foreach (int id in ids)
        {
            var chunk = detok.Append(id);
            if (!chunk.TryCopyTo(destination[charsWritten..])) return OperationStatus.DestinationTooSmall;
            charsWritten += chunk.Length;
            idsConsumed++;
        }
        var rest = detok.Flush();
        if (!rest.TryCopyTo(destination[charsWritten..])) return OperationStatus.DestinationTooSmall;
        charsWritten += rest.Length;
        return OperationStatus.Done;
    }
}
