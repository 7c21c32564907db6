using System.Numerics;
using System.Runtime.CompilerServices;

namespace Gemma.Core.Constraints;

/// <summary>
/// What one automaton state allows, independent of the stack below it (XGrammar's "context-independent tokens"):
/// tokens the state's own rule accepts whole, and — for tokens along which the rule can *end* — where the rest of
/// the token starts, checked against the actual stack at run time.
/// </summary>
/// <remarks>
/// A token tail is not copied: when the rule can end after the trie node <c>n</c>, the tails are the subtrees of
/// <c>n</c>'s children. The children are kept grouped by their byte (<see cref="TailBytes"/>), so at run time one
/// step of the real stack per distinct byte rejects most groups at once (after a string ends, only <c>,</c>
/// <c>}</c> <c>]</c> … go on).
/// </remarks>
internal sealed class StateTokens
{
    public ulong[]? AcceptedBits;  // (vocab / 64) when many tokens are accepted
    public int[]? AcceptedIds;     // when few are
    public byte[]? TailBytes;      // distinct first bytes of tails; null if the rule never ends inside a token
    public int[]? TailGroupStart;  // (TailBytes.Length + 1) group g is TailNodes[TailGroupStart[g] ..]
    public int[]? TailSlice;       // (tail) the slice whose trie holds the node
    public int[]? TailNodes;       // (tail) trie node whose subtree (and itself) is the tail
}

/// <summary>
/// Per-state token sets of one grammar at one vocabulary, computed the first time a state is met and shared by every
/// generation with that constraint (thread-safe: a state computed twice by racing threads gives equal results).
/// </summary>
/// <remarks>
/// Learning a state is a walk of the vocabulary's tries, pruned where no parse survives, except that a slice whose
/// whole language provably keeps the state inside its rule (<see cref="Contains"/>, a product of two small automata)
/// is taken with one bitset OR: in a JSON string body that skips ≈ 97 % of Gemma's vocabulary, so learning costs a
/// walk of the few thousand tokens with quotes, backslashes or control characters.
/// </remarks>
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
        var tails = new List<(byte Byte, int Slice, int Node)>();
        bool containing = true; // the slices grow by length: once one is not contained, no longer one is
        for (int k = 0; k < v.Slices.Length; k++)
        {
            TokenSlice slice = v.Slices[k];
            if (slice.Language is { } language && containing && (containing = Contains(Grammar, state, language)))
            {
                for (int w = 0; w < accepted.Length; w++) accepted[w] |= slice.Mask[w];
                continue;
            }
            completions.Clear();
            walker.WalkFrom(slice.Trie, [new StackTop { State = state, Parent = PdaRunner.SentinelFrame }], accepted, completions);
            TokenTrie trie = slice.Trie;
            foreach ((int node, _) in completions)
                for (int c = node + 1; c < trie.End[node]; c = trie.End[c]) tails.Add((trie.Label[c], k, c));
        }

        var result = new StateTokens();
        if (tails.Count > 0)
        {
            tails.Sort((a, b) => a.Byte != b.Byte ? a.Byte.CompareTo(b.Byte) : a.Slice != b.Slice ? a.Slice.CompareTo(b.Slice) : a.Node.CompareTo(b.Node));
            var bytes = new List<byte>();
            var starts = new List<int>();
            for (int i = 0; i < tails.Count; i++)
            {
                if (i > 0 && tails[i].Byte == tails[i - 1].Byte) continue;
                bytes.Add(tails[i].Byte);
                starts.Add(i);
            }
            starts.Add(tails.Count);
            result.TailBytes = [.. bytes];
            result.TailGroupStart = [.. starts];
            result.TailSlice = [.. tails.Select(t => t.Slice)];
            result.TailNodes = [.. tails.Select(t => t.Node)];
        }
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

    /// <summary>
    /// Whether every word of <paramref name="language"/> (a one-rule automaton whose states can all reach its end) is
    /// read from <paramref name="state"/> by <paramref name="g"/>'s own rule automaton without dying: a search of the
    /// reachable pairs (language state, grammar state), failing on the first byte the language reads and the grammar
    /// does not. Then every such token is accepted — every grammar state can still be completed — whatever the stack.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    internal static bool Contains(CompiledGrammar g, int state, CompiledGrammar language)
    {
        // One byte per distinct (language class, grammar class) pair stands for all bytes of that pair.
        var seenPair = new int[language.ClassCount * g.ClassCount];
        Span<byte> bytes = stackalloc byte[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            ref int p = ref seenPair[language.ByteClass[b] * g.ClassCount + g.ByteClass[b]];
            if (p == 0) { p = 1; bytes[n++] = (byte)b; }
        }
        bytes = bytes[..n];
        var seen = new HashSet<long>();
        var work = new Stack<(int L, int G)>();
        work.Push((language.RuleStart[language.Root], state));
        seen.Add(((long)language.RuleStart[language.Root] << 32) | (uint)state);
        while (work.Count > 0)
        {
            (int l, int s) = work.Pop();
            foreach (byte b in bytes)
            {
                int l2 = language.Step(l, b);
                if (l2 < 0) continue;
                int s2 = g.Step(s, b);
                if (s2 < 0) return false;
                if (seen.Add(((long)l2 << 32) | (uint)s2)) work.Push((l2, s2));
            }
        }
        return true;
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
        Walk(trie, 0, 0, tops.Length, bits, completions);
    }

    /// <summary>
    /// Sets the bit of every token in the subtree below <paramref name="root"/> (node 0: the whole trie) that some
    /// stack at <c>Buffer[at..+count]</c> can read whole, reading from the byte after <paramref name="root"/>. With
    /// <paramref name="completions"/>, records (node, depth) where the analysed frame returned to the sentinel: the
    /// tokens below such a node are decided by what follows the frame.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    public void Walk(TokenTrie trie, int root, int at, int count, Span<ulong> bits, List<(int, int)>? completions)
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
        int nodes = end[root], baseDepth = depth[root];
        CompiledGrammar g = r.Grammar;
        int[] next = g.Next;
        bool[] plain = g.Plain;
        byte[] byteClass = g.ByteClass;
        int classes = g.ClassCount;
        int i = root + 1;
        while (i < nodes)
        {
            int d = depth[i] - baseDepth;
            if (_count[d - 1] == 1)
            {
                // Fast path, most nodes of a walk: one stack whose next state neither calls nor returns — a plain
                // DFA step, no frames, no closure.
                StackTop only = r.Buffer[_start[d - 1]];
                int t = next[only.State * classes + byteClass[label[i]]];
                if (t < 0)
                {
                    i = end[i];
                    continue;
                }
                if (plain[t])
                {
                    for (int k = tokenStart[i]; k < tokenStart[i + 1]; k++)
                    {
                        int id = ids[k];
                        bits[id >> 6] |= 1UL << id;
                    }
                    int slot = _start[d - 1] + 1;
                    if (slot >= r.Buffer.Length) Array.Resize(ref r.Buffer, r.Buffer.Length * 2);
                    r.Buffer[slot] = new StackTop { State = t, Parent = only.Parent };
                    _start[d] = slot;
                    _count[d] = 1;
                    _frames[d] = _frames[d - 1];
                    i++;
                    continue;
                }
            }
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
