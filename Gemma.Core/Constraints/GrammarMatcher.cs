using System.Runtime.CompilerServices;

namespace Gemma.Core.Constraints;

/// <summary>
/// The state of one constrained generation: the live parse stacks after the tokens so far. Computes the mask of
/// tokens that keep the output completable and advances by the chosen token.
/// </summary>
/// <remarks>
/// <para>Mask = for each stack top: the tokens its state accepts on its own (cached per state, shared), plus the
/// cached token tails after its rule ends, checked by walking their small trie against the frames below.</para>
/// <para>Frames live in an arena that only grows by the few frames each accepted token adds; mask computation rolls
/// it back, so in steady state (all states met before) a token allocates nothing. Not thread-safe.</para>
/// </remarks>
internal sealed class GrammarMatcher
{
    private readonly TokenMaskCache _cache;
    private readonly CompiledGrammar _g;
    private readonly PdaRunner _runner;
    private readonly TrieWalker _walker;
    private StackTop[] _current = new StackTop[16];
    private int _count, _committedFrames;
    private bool _accept;

    public GrammarMatcher(TokenMaskCache cache)
    {
        _cache = cache;
        _g = cache.Grammar;
        _runner = new PdaRunner(_g);
        _walker = new TrieWalker(_runner);
        Reset();
    }

    public TokenVocabulary Vocabulary => _cache.Vocabulary;

    /// <summary>The output so far is a complete value (an end token may follow).</summary>
    public bool CanEnd => _accept;

    /// <summary>The output is complete and nothing may follow it.</summary>
    public bool IsFinished => _accept && _count == 0;

    /// <summary>Live parse stacks (more than one when the grammar is ambiguous here).</summary>
    public int StackCount => _count;

    /// <summary>Back to the empty output.</summary>
    public void Reset()
    {
        _runner.FrameTop = 0;
        StepResult r = _runner.ClosureOf(_g.RuleStart[_g.Root], PdaRunner.RootFrame, 0);
        Commit(r);
    }

    /// <summary>Sets exactly the bits of the text tokens that may come next (end tokens are the caller's: see <see cref="CanEnd"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    public void FillMask(Span<ulong> mask)
    {
        mask.Clear();
        for (int i = 0; i < _count; i++)
        {
            StackTop top = _current[i];
            StateTokens st = _cache.Get(top.State, _walker);
            if (st.AcceptedBits is { } bits)
            {
                for (int w = 0; w < bits.Length; w++) mask[w] |= bits[w];
            }
            else
            {
                foreach (int id in st.AcceptedIds!) mask[id >> 6] |= 1UL << id;
            }
            if (st.TailBytes is { } tailBytes && top.Parent >= 0) WalkTails(st, tailBytes, top.Parent, mask);
            _runner.FrameTop = _committedFrames;
        }
    }

    /// <summary>
    /// The tokens along which the top's rule ends and the stack below goes on: for each distinct first byte of a
    /// tail, one step of the real stack; if it survives, the tail subtrees of that byte are walked from there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    private void WalkTails(StateTokens st, byte[] tailBytes, int parent, Span<ulong> mask)
    {
        StepResult after = _runner.ClosureOf(_runner.FrameState(parent), _runner.FrameParent(parent), 0);
        if (after.Count == 0) return;
        int afterFrames = _runner.FrameTop;
        TokenSlice[] slices = Vocabulary.Slices;
        for (int g = 0; g < tailBytes.Length; g++)
        {
            StepResult r = _runner.Advance(after.Start, after.Count, tailBytes[g], after.Start + after.Count);
            if (r.Alive)
            {
                for (int t = st.TailGroupStart![g]; t < st.TailGroupStart[g + 1]; t++)
                {
                    TokenTrie trie = slices[st.TailSlice![t]].Trie;
                    int node = st.TailNodes![t];
                    for (int k = trie.TokenStart[node]; k < trie.TokenStart[node + 1]; k++)
                    {
                        int id = trie.TokenIds[k];
                        mask[id >> 6] |= 1UL << id;
                    }
                    if (r.Count > 0 && trie.End[node] > node + 1) _walker.Walk(trie, node, r.Start, r.Count, mask, null);
                }
            }
            _runner.FrameTop = afterFrames;
        }
    }

    /// <summary>Accepts a token; false (and no change) if the grammar does not allow it.</summary>
    public bool TryAdvance(int token)
    {
        StepResult r = Simulate(Vocabulary.Bytes[token]);
        if (!r.Alive || Vocabulary.Bytes[token].Length == 0)
        {
            _runner.FrameTop = _committedFrames;
            return false;
        }
        Commit(r);
        return true;
    }

    /// <summary>
    /// Tokens still needed to finish after <paramref name="token"/>, at best: 0 if the value is then complete and
    /// closed, 1 for just the end token, else the fewest bytes to complete + 1 (every byte has a token);
    /// <see cref="int.MaxValue"/> if the token is not allowed.
    /// </summary>
    public int NeedAfter(int token)
    {
        byte[] bytes = Vocabulary.Bytes[token];
        StepResult r = Simulate(bytes);
        int need = bytes.Length == 0 ? int.MaxValue : Need(r);
        _runner.FrameTop = _committedFrames;
        return need;
    }

    /// <summary>Tokens needed to finish from here: 0 if finished, 1 if only the end token is missing, else bytes + 1.</summary>
    public int Need()
    {
        if (IsFinished) return 0;
        if (_accept) return 1;
        int best = int.MaxValue;
        for (int i = 0; i < _count; i++) best = Math.Min(best, _runner.Cost(_current[i]));
        return best + 1;
    }

    /// <summary>The byte (with a single-byte token) that gets closest to a complete value, or -1.</summary>
    public int ShortestNextByte()
    {
        int bestByte = -1, best = int.MaxValue;
        for (int b = 0; b < 256; b++)
        {
            if (Vocabulary.ByteToken[b] < 0) continue;
            StepResult r = Simulate([(byte)b]);
            int need = Need(r);
            _runner.FrameTop = _committedFrames;
            if (need < best) { best = need; bestByte = b; }
        }
        return bestByte;
    }

    private int Need(StepResult r)
    {
        if (!r.Alive) return int.MaxValue;
        if (r.Count == 0) return 0;
        if (r.Accept) return 1;
        int best = int.MaxValue;
        for (int i = 0; i < r.Count; i++) best = Math.Min(best, _runner.Cost(_runner.Buffer[r.Start + i]));
        return best + 1;
    }

    private StepResult Simulate(ReadOnlySpan<byte> bytes)
    {
        if (_runner.Buffer.Length < _count) Array.Resize(ref _runner.Buffer, _count * 2);
        _current.AsSpan(0, _count).CopyTo(_runner.Buffer);
        var r = new StepResult { Start = 0, Count = _count, Accept = _accept };
        foreach (byte b in bytes)
        {
            if (r.Count == 0) return default;
            r = _runner.Advance(r.Start, r.Count, b, r.Start + r.Count);
        }
        return r;
    }

    private void Commit(StepResult r)
    {
        if (_current.Length < r.Count) _current = new StackTop[r.Count * 2];
        _runner.Buffer.AsSpan(r.Start, r.Count).CopyTo(_current);
        _count = r.Count;
        _accept = r.Accept;
        _committedFrames = _runner.FrameTop;
    }
}
