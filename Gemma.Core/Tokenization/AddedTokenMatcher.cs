using System.Buffers;

namespace Gemma.Core.Tokenization;

/// <summary>
/// Finds added tokens (control and user-defined pieces) in raw text, before normalization, the way Hugging Face's
/// <c>AddedVocabulary</c> does for tokens with <c>normalized: false</c>: leftmost match first, longest match at that
/// position. Control tokens take part only when the caller asks for control-token parsing.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, Candidate[]> _byFirstChar;
    private readonly SearchValues<char> _firstChars;
    private readonly SearchValues<char> _firstCharsNoControl;

    private readonly record struct Candidate(string Text, int Id, bool IsControl);

    public AddedTokenMatcher(IEnumerable<(string Text, int Id, bool IsControl)> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Text.Length > 0)
            .GroupBy(t => t.Text[0])
            .ToDictionary(
                g => g.Key,
                g => g.OrderByDescending(t => t.Text.Length).Select(t => new Candidate(t.Text, t.Id, t.IsControl)).ToArray());
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
        _firstCharsNoControl = SearchValues.Create(
            _byFirstChar.Where(kv => kv.Value.Any(c => !c.IsControl)).Select(kv => kv.Key).ToArray());
    }

    /// <summary>
    /// Finds the next added token at or after <paramref name="start"/>. Returns its index (or -1) and its length and id.
    /// </summary>
    public int FindNext(ReadOnlySpan<char> text, int start, bool includeControl, out int length, out int id)
    {
        var firstChars = includeControl ? _firstChars : _firstCharsNoControl;
        int i = start;
        while (i < text.Length)
        {
            int hit = text[i..].IndexOfAny(firstChars);
            if (hit < 0) break;
            i += hit;
            var rest = text[i..];
            foreach (var c in _byFirstChar[text[i]])
            {
                if ((includeControl || !c.IsControl) && rest.StartsWith(c.Text, StringComparison.Ordinal))
                {
                    length = c.Text.Length;
                    id = c.Id;
                    return i;
                }
            }
            i++;
        }
        length = 0;
        id = -1;
        return -1;
    }
}
