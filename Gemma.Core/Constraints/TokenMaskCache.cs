using System.Numerics;

namespace Gemma.Core.Constraints;

/// <summary>
/// What one automaton state allows, independent of the stack below it (XGrammar's "context-independent tokens"):
/// tokens the state's own rule accepts whole, and — for tokens along which the rule can end — the rest of the token
/// after that end, in a small trie that is checked against the actual stack at run time.
/// </summary>
internal sealed class StateTokens
{
    public ulong[]? AcceptedBits;  // (vocab / 64) when many tokens are accepted
    public int[]? AcceptedIds;     // when few are
    public TokenTrie? Suffixes;    // token tails after the rule ends inside the token; null if none
}

/// <summary>
/// Per-state token sets of one grammar at one vocabulary, computed the first time a state is met and shared by every
/// generation with that constraint (thread-safe: a state computed twice by racing threads gives equal results).
/// </summary>
internal sealed class TokenMaskCache
{
    private const int SparseLimit = 2048;
    private readonly StateTokens?[] _states;

    public TokenMaskCache(CompiledGrammar grammar, TokenVocabulary vocabulary)
    {
        Grammar = grammar;
        Vocabulary = vocabulary;
        _states = new StateTokens?[grammar.StateCount];
    }

    public CompiledGrammar Grammar { get; }
    public TokenVocabulary Vocabulary { get; }

    /// <summary>How many states have been analysed (for tests and benchmarks).</summary>
    public int ComputedStates => _states.Count(s => s is not null);

    public StateTokens Get(int state, TrieWalker walker)
    {
        StateTokens? s = Volatile.Read(ref _states[state]);
        if (s is not null) return s;
        s = Compute(state, walker);
        return Interlocked.CompareExchange(ref _states[state], s, null) ?? s;
    }

    private StateTokens Compute(int state, TrieWalker walker)
    {
        TokenVocabulary v = Vocabulary;
        var accepted = new ulong[(v.Size + 63) / 64];
        var completions = new List<(int Node, int Depth)>();
        walker.WalkFrom(v.Trie, [new StackTop { State = state, Parent = PdaRunner.SentinelFrame }], accepted, completions);

        TokenTrie trie = v.Trie;
        var tails = new List<(byte[], int, int)>();
        foreach ((int node, int depth) in completions)
        {
            for (int k = trie.TokenStart[node + 1]; k < trie.TokenStart[trie.End[node]]; k++)
            {
                int id = trie.TokenIds[k];
                if ((accepted[id >> 6] & (1UL << id)) == 0) tails.Add((v.Bytes[id], depth, id));
            }
        }
        var result = new StateTokens { Suffixes = tails.Count > 0 ? TokenTrie.Build(tails) : null };
        int count = 0;
        foreach (ulong w in accepted) count += BitOperations.PopCount(w);
        if (count > SparseLimit)
        {
            result.AcceptedBits = accepted;
        }
        else
        {
            var ids = new int[count];
            int n = 0;
            for (int w = 0; w < accepted.Length; w++)
                for (ulong bits = accepted[w]; bits != 0; bits &= bits - 1)
                    ids[n++] = w * 64 + BitOperations.TrailingZeroCount(bits);
            result.AcceptedIds = ids;
        }
        return result;
    }
}

/// <summary>Walks a <see cref="TokenTrie"/> with a <see cref="PdaRunner"/>, pruning subtrees no parse survives.</summary>
internal sealed class TrieWalker
{
    private readonly PdaRunner _runner;
    private int[] _start = new int[64], _count = new int[64], _frames = new int[64];

    public TrieWalker(PdaRunner runner) => _runner = runner;

    public PdaRunner Runner => _runner;

    /// <summary>Copies <paramref name="tops"/> into the runner's buffer and walks from them.</summary>
    public void WalkFrom(TokenTrie trie, ReadOnlySpan<StackTop> tops, Span<ulong> bits, List<(int, int)>? completions)
    {
        if (_runner.Buffer.Length < tops.Length) Array.Resize(ref _runner.Buffer, tops.Length * 2);
        tops.CopyTo(_runner.Buffer);
        Walk(trie, 0, tops.Length, bits, completions);
    }

    /// <summary>
    /// Sets the bit of every token of <paramref name="trie"/> that some stack at <c>Buffer[at..+count]</c> can read
    /// whole. With <paramref name="completions"/>, records (node, depth) where the analysed frame returned to the
    /// sentinel: the tokens below such a node are decided by what follows the frame.
    /// </summary>
    public void Walk(TokenTrie trie, int at, int count, Span<ulong> bits, List<(int, int)>? completions)
    {
        PdaRunner r = _runner;
        int frameBase = r.FrameTop;
        if (_start.Length <= trie.MaxDepth + 1)
        {
            Array.Resize(ref _start, trie.MaxDepth + 2);
            Array.Resize(ref _count, trie.MaxDepth + 2);
            Array.Resize(ref _frames, trie.MaxDepth + 2);
        }
        _start[0] = at;
        _count[0] = count;
        _frames[0] = frameBase;
        byte[] label = trie.Label;
        int[] depth = trie.Depth, end = trie.End, tokenStart = trie.TokenStart, ids = trie.TokenIds;
        int nodes = trie.NodeCount;
        int i = 1;
        while (i < nodes)
        {
            int d = depth[i];
            r.FrameTop = _frames[d - 1];
            StepResult step = r.Advance(_start[d - 1], _count[d - 1], label[i], _start[d - 1] + _count[d - 1]);
            if (!step.Alive)
            {
                i = end[i];
                continue;
            }
            for (int k = tokenStart[i]; k < tokenStart[i + 1]; k++)
            {
                int id = ids[k];
                bits[id >> 6] |= 1UL << id;
            }
            if (step.Complete) completions?.Add((i, d));
            if (step.Count == 0)
            {
                i = end[i];
                continue;
            }
            _start[d] = step.Start;
            _count[d] = step.Count;
            _frames[d] = r.FrameTop;
            i++;
        }
        r.FrameTop = frameBase;
    }
}
