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
/// whole language provably keeps the state inside its rule (<see cref="FamilyRuns"/>, one level search per slice
/// family) is taken with one bitset OR: in a JSON string body that skips ≈ 97 % of Gemma's vocabulary, so learning
/// costs a walk of the few thousand tokens with quotes, backslashes or control characters. Inside a walk, a subtree
/// whose bytes all lie in a class the state surely reads that far is taken whole
/// (<see cref="CompiledGrammar.RunLength"/>).
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
        int family = -1;
        (int Contain, int ExcludeFrom) runs = default;
        for (int k = 0; k < v.Slices.Length; k++)
        {
            TokenSlice slice = v.Slices[k];
            if (slice.Family >= 0)
            {
                if (slice.Family != family) runs = FamilyRuns(Grammar, state, v.FamilyChars[family = slice.Family]);
                if (slice.MaxChars <= runs.Contain)
                {
                    for (int w = 0; w < accepted.Length; w++) accepted[w] |= slice.Mask[w];
                    continue;
                }
                if (slice.MinChars >= runs.ExcludeFrom) continue;
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
    /// How a slice family (tokens that are runs of one character class <paramref name="chars"/>) meets
    /// <paramref name="state"/>, in characters: every run up to <c>Contain</c> long is read by the state's own rule
    /// without dying (then whatever the stack, those tokens are accepted: every grammar state can still be completed),
    /// and no run of <c>ExcludeFrom</c> or more can be read while no state on the way may end its rule or call another
    /// (bytes read there are decided elsewhere) — so slices up to <c>Contain</c> are taken whole, slices from
    /// <c>ExcludeFrom</c> skipped, the others walked. A search level by level over the sets of grammar states after
    /// L characters (UTF-8 sequences are followed byte by byte); a set met before is a cycle, so
    /// <see cref="CompiledGrammar.Unbounded"/>. A string state with 5 characters left gives (5, 6).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs the first time a state is met: no tier-0 code
    internal static (int Contain, int ExcludeFrom) FamilyRuns(CompiledGrammar g, int state, CompiledGrammar chars)
    {
        const int maxLevel = 40, maxExclusion = 32; // past every finite slice bound
        // One byte per distinct (character-class class, grammar class) pair stands for all bytes of that pair.
        var seenPair = new bool[chars.ClassCount * g.ClassCount];
        Span<byte> bytes = stackalloc byte[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            ref bool p = ref seenPair[chars.ByteClass[b] * g.ClassCount + g.ByteClass[b]];
            if (!p) { p = true; bytes[n++] = (byte)b; }
        }
        bytes = bytes[..n];
        int charStart = chars.RuleStart[chars.Root];
        int contain = -1, excludeFrom = CompiledGrammar.Unbounded;
        bool touched = Touches(g, state);
        int[] current = [state];
        var levels = new List<int[]> { current };
        var next = new SortedSet<int>();
        var seen = new HashSet<long>();
        var work = new Stack<(int C, int G)>();
        for (int level = 1; level <= maxLevel; level++)
        {
            // The states after one more character, following its bytes (a character is one byte or a UTF-8 sequence).
            bool died = false;
            next.Clear();
            seen.Clear();
            foreach (int s0 in current) work.Push((charStart, s0));
            while (work.Count > 0)
            {
                (int c, int s) = work.Pop();
                foreach (byte b in bytes)
                {
                    int c2 = chars.Step(c, b);
                    if (c2 < 0) continue;
                    int s2 = g.Step(s, b);
                    if (s2 < 0) { died = true; continue; }
                    if (chars.Final[c2]) next.Add(s2);
                    else if (seen.Add(((long)c2 << 32) | (uint)s2))
                    {
                        touched |= Touches(g, s2);
                        work.Push((c2, s2));
                    }
                }
            }
            if (died && contain < 0) contain = level - 1;
            if (next.Count == 0)
            {
                if (!touched) excludeFrom = level;
                break;
            }
            foreach (int s in next) touched |= Touches(g, s);
            // Give up early where the answer cannot help: a run that may end the rule is never excluded, and an
            // exclusion (all runs dying at one length) is not worth a search over many states — those slices'
            // walks die fast anyway. Unknown results stay sound: contain as far as checked, nothing excluded.
            if (contain >= 0 && (touched || next.Count > 4 || level >= maxExclusion)) break;
            if (next.Count > 64)
            {
                contain = level;
                break;
            }
            current = [.. next];
            bool cycle = false;
            foreach (int[] l in levels) cycle |= l.AsSpan().SequenceEqual(current);
            if (cycle) break;
            levels.Add(current);
        }
        // Left the loop without dying: on a cycle (or past the longest finite slice) no run ever dies.
        if (contain < 0) contain = levels.Count <= maxLevel ? CompiledGrammar.Unbounded : maxLevel;
        return (contain, excludeFrom);
    }

    private static bool Touches(CompiledGrammar g, int s) => g.Final[s] || g.Calls[s].Length > 0;
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
        int[] start = _start, counts = _count, frames = _frames;
        start[0] = at;
        counts[0] = count;
        frames[0] = frameBase;
        byte[] label = trie.Label;
        int[] depth = trie.Depth, end = trie.End, tokenStart = trie.TokenStart, ids = trie.TokenIds;
        byte[] subtreeClasses = trie.SubtreeClasses, height = trie.Height;
        int nodes = end[root], baseDepth = depth[root];
        CompiledGrammar g = r.Grammar;
        int[] next = g.Next;
        bool[] plain = g.Plain;
        byte[] byteClass = g.ByteClass;
        short[] run = g.RunTable;
        int classes = g.ClassCount;
        StackTop[] buffer = r.Buffer; // reloaded after every call that may grow it
        int i = root + 1;
        while (i < nodes)
        {
            int d = depth[i] - baseDepth;
            if (counts[d - 1] == 1)
            {
                // Fast path, most nodes of a walk: one stack whose next state neither calls nor returns — a plain
                // DFA step, no frames, no closure.
                StackTop only = buffer[start[d - 1]];
                int t = next[only.State * classes + byteClass[label[i]]];
                if (t < 0)
                {
                    i = end[i];
                    continue;
                }
                if (plain[t])
                {
                    // A subtree whose bytes all lie in a class the state surely reads that far is accepted whole:
                    // under a counted run [a-z]{0,9} or in a string body, most of the vocabulary below a node
                    // needs no step at all.
                    int e = end[i];
                    bool whole = false;
                    if (e > i + 1)
                    {
                        int h = height[i], at0 = t * AsciiClasses.Count;
                        for (uint m = subtreeClasses[i]; m != 0; m &= m - 1)
                        {
                            int c = BitOperations.TrailingZeroCount(m);
                            int v = run[at0 + c];
                            if (v == 0) v = g.RunLength(t, c) + 1;
                            if (v > h)
                            {
                                whole = true;
                                break;
                            }
                        }
                    }
                    for (int k = tokenStart[i], kEnd = tokenStart[whole ? e : i + 1]; k < kEnd; k++)
                    {
                        int id = ids[k];
                        bits[id >> 6] |= 1UL << id;
                    }
                    if (whole)
                    {
                        i = e;
                        continue;
                    }
                    int slot = start[d - 1] + 1;
                    if (slot >= buffer.Length)
                    {
                        Array.Resize(ref r.Buffer, r.Buffer.Length * 2);
                        buffer = r.Buffer;
                    }
                    buffer[slot] = new StackTop { State = t, Parent = only.Parent };
                    start[d] = slot;
                    counts[d] = 1;
                    frames[d] = frames[d - 1];
                    i++;
                    continue;
                }
            }
            r.FrameTop = frames[d - 1];
            StepResult step = r.Advance(start[d - 1], counts[d - 1], label[i], start[d - 1] + counts[d - 1]);
            buffer = r.Buffer;
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
            start[d] = step.Start;
            counts[d] = step.Count;
            frames[d] = r.FrameTop;
            i++;
        }
        r.FrameTop = frameBase;
    }
}
