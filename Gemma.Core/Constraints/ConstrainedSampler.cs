using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Core.Constraints;

/// <summary>
/// Chooses tokens under an <see cref="OutputConstraint"/> for one generation: masks the logits, allows an end token
/// only when the output is complete, and keeps the output completable within the token budget.
/// </summary>
/// <remarks>
/// Budget: with <c>remaining</c> tokens left (this one included), a sampled token is kept only if the value can still
/// be finished (plus the end token) in the tokens after it — every byte has a token, so the fewest bytes to finish
/// bound the tokens needed. A rejected token is masked and the sampler draws again (up to
/// <see cref="MaxRedraws"/> times); after that the next byte of the shortest completion is forced. If even the
/// shortest completion did not fit at the start, the constraint still holds for every token but the output ends
/// unfinished with <see cref="FinishReason.MaxTokens"/>.
/// </remarks>
internal sealed class ConstrainedSampler
{
    private const int MaxRedraws = 8;
    private readonly GrammarMatcher _matcher;
    private readonly int[] _endIds;
    private readonly ulong[] _mask;
    private readonly bool _fits;

    public ConstrainedSampler(OutputConstraint constraint, GemmaTokenizer tokenizer, IEnumerable<int> endIds, int vocabSize, int maxTokens)
    {
        _matcher = constraint.CreateMatcher(tokenizer);
        _endIds = [.. endIds.Where(id => (uint)id < (uint)vocabSize).Order()];
        _mask = new ulong[(vocabSize + 63) / 64];
        _fits = _matcher.Need() <= maxTokens;
        if (_endIds.Length == 0) throw new GemmaException("Constrained generation needs an end-of-sequence token id.");
    }

    /// <summary>The output is complete and nothing may follow: stop without sampling an end token.</summary>
    public bool IsFinished => _matcher.IsFinished;

    public GrammarMatcher Matcher => _matcher;

    /// <summary>The next token; <paramref name="remaining"/> counts the tokens that may still be generated, this one included.</summary>
    public int Sample(Sampler sampler, ReadOnlySpan<float> logits, ReadOnlySpan<int> history, int remaining)
    {
        if (_matcher.CanEnd && (remaining <= 1 || _matcher.IsFinished)) return _endIds[0];
        _matcher.FillMask(_mask);
        if (_matcher.CanEnd)
            foreach (int id in _endIds) _mask[id >> 6] |= 1UL << id;
        for (int attempt = 0; attempt <= MaxRedraws; attempt++)
        {
            if (IsEmpty(_mask)) break;
            int id = sampler.Sample(logits, history, _mask);
            if (!_fits || Array.IndexOf(_endIds, id) >= 0) return id;
            if (_matcher.NeedAfter(id) <= remaining - 1) return id;
            _mask[id >> 6] &= ~(1UL << id);
        }
        int b = _matcher.ShortestNextByte();
        if (b < 0)
            throw new GemmaException("Constrained generation: no token of this vocabulary can continue the output (the grammar needs a byte the vocabulary cannot spell).");
        return _matcher.Vocabulary.ByteToken[b];
    }

    /// <summary>Records a generated (non-end) token.</summary>
    public void Accept(int token)
    {
        if (!_matcher.TryAdvance(token))
            throw new InvalidOperationException($"Token {token} was sampled under the constraint but the grammar rejects it.");
    }

    private static bool IsEmpty(ulong[] mask)
    {
        foreach (ulong w in mask) if (w != 0) return false;
        return true;
    }
}
