using System.Runtime.CompilerServices;

namespace Gemma.Core.Constraints;

/// <summary>The top of one parse stack: the automaton state about to read a byte and the frame to return to.</summary>
internal struct StackTop
{
    public int State;
    public int Parent; // frame index, or PdaRunner.RootFrame / SentinelFrame
}

/// <summary>What one step produced: <see cref="Count"/> stack tops at <c>Buffer[Start..]</c>, and whether the whole
/// value may end here (<see cref="Accept"/>) or the frame being analysed returned (<see cref="Complete"/>).</summary>
internal struct StepResult
{
    public int Start, Count;
    public bool Accept, Complete;
    public readonly bool Alive => Count > 0 || Accept || Complete;
}

/// <summary>
/// Runs a <see cref="CompiledGrammar"/> as a pushdown automaton over bytes, keeping a set of parse stacks (the grammar
/// may be ambiguous). Stacks are linked lists of frames <c>(return state, parent)</c> in an arena; frames are
/// hash-consed so equal stacks are equal indices and duplicate stacks collapse. Callers carve regions out of
/// <see cref="Buffer"/> and roll the arena back with <see cref="FrameTop"/>, so a token-trie walk allocates nothing.
/// </summary>
/// <remarks>Not thread-safe; one per matcher.</remarks>
internal sealed class PdaRunner
{
    public const int RootFrame = -1;     // returning here ends the whole value
    public const int SentinelFrame = -2; // returning here ends the frame under analysis (mask precomputation)
    public const int MaxStacks = 4096;   // more live parses than this is a grammar too ambiguous to run

    private readonly CompiledGrammar _g;
    private int[] _frameState = new int[4096], _frameParent = new int[4096];
    private readonly int[] _intern = new int[1 << 16]; // direct-mapped cache (state, parent) -> frame + 1
    private long[] _visitKey = new long[1024];
    private int[] _visitStamp = new int[1024];
    private int _stamp, _visitCount;
    private (int State, int Parent)[] _work = new (int, int)[256];

    public PdaRunner(CompiledGrammar grammar) => _g = grammar;

    public CompiledGrammar Grammar => _g;

    /// <summary>Stack tops, carved into regions by the callers.</summary>
    public StackTop[] Buffer = new StackTop[1024];

    /// <summary>Frames below this index are in use; set it back to release the frames allocated since.</summary>
    public int FrameTop;

    public int FrameState(int frame) => _frameState[frame];
    public int FrameParent(int frame) => _frameParent[frame];

    /// <summary>The frame (state, parent), reusing an existing equal frame when the cache remembers one.</summary>
    public int Intern(int state, int parent)
    {
        uint h = (uint)HashCode.Combine(state, parent) & (uint)(_intern.Length - 1);
        int f = _intern[h] - 1;
        if (f >= 0 && f < FrameTop && _frameState[f] == state && _frameParent[f] == parent) return f;
        if (FrameTop == _frameState.Length)
        {
            Array.Resize(ref _frameState, FrameTop * 2);
            Array.Resize(ref _frameParent, FrameTop * 2);
        }
        f = FrameTop++;
        _frameState[f] = state;
        _frameParent[f] = parent;
        _intern[h] = f + 1;
        return f;
    }

    /// <summary>Stack tops after reading byte <paramref name="b"/> from the tops at <c>Buffer[srcStart..+srcCount]</c>, written at <paramref name="at"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    public StepResult Advance(int srcStart, int srcCount, byte b, int at)
    {
        var result = new StepResult { Start = at };
        int cls = _g.ByteClass[b];
        int classes = _g.ClassCount;
        int[] next = _g.Next;
        if (srcCount == 1)
        {
            // Fast path (most of a token-trie walk): one stack, and a state that neither calls nor returns.
            StackTop only = Buffer[srcStart];
            int t = next[only.State * classes + cls];
            if (t < 0) return result;
            if (_g.Plain[t])
            {
                if (at >= Buffer.Length) Array.Resize(ref Buffer, Math.Max(at + 1, Buffer.Length * 2));
                Buffer[at] = new StackTop { State = t, Parent = only.Parent };
                result.Count = 1;
                return result;
            }
        }
        NewVisit();
        for (int i = 0; i < srcCount; i++)
        {
            StackTop top = Buffer[srcStart + i];
            int t = next[top.State * classes + cls];
            if (t >= 0) Closure(t, top.Parent, ref result);
        }
        return result;
    }

    /// <summary>The stack tops reachable from (state, parent) without reading a byte, written at <paramref name="at"/>.</summary>
    public StepResult ClosureOf(int state, int parent, int at)
    {
        var result = new StepResult { Start = at };
        NewVisit();
        Closure(state, parent, ref result);
        return result;
    }

    /// <summary>Fewest bytes that complete the value from a stack top: its state's distance plus every frame's.</summary>
    public int Cost(StackTop top)
    {
        long cost = _g.Distance[top.State];
        for (int f = top.Parent; f >= 0; f = _frameParent[f]) cost += _g.Distance[_frameState[f]];
        return (int)Math.Min(cost, int.MaxValue / 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs hot the first time a state is met: no tier-0 code
    private void Closure(int state, int parent, ref StepResult result)
    {
        int n = 0;
        _work[n++] = (state, parent);
        while (n > 0)
        {
            (int s, int q) = _work[--n];
            if (!MarkVisited(s, q)) continue;
            if (_g.HasBytes[s]) Emit(s, q, ref result);
            foreach ((int rule, int target) in _g.Calls[s])
            {
                int p = _g.IsTail(target) ? q : Intern(target, q); // a call in tail position keeps no frame
                Push(ref n, _g.RuleStart[rule], p);
            }
            if (_g.Final[s])
            {
                if (q == RootFrame) result.Accept = true;
                else if (q == SentinelFrame) result.Complete = true;
                else Push(ref n, _frameState[q], _frameParent[q]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Push(ref int n, int s, int q)
    {
        if (n == _work.Length) Array.Resize(ref _work, n * 2);
        _work[n++] = (s, q);
    }

    private void Emit(int s, int q, ref StepResult result)
    {
        if (result.Count >= MaxStacks)
            throw new GemmaException($"Grammar: more than {MaxStacks} simultaneous parses; the grammar is too ambiguous to run (rewrite overlapping alternatives).");
        int at = result.Start + result.Count;
        if (at >= Buffer.Length) Array.Resize(ref Buffer, Math.Max(at + 1, Buffer.Length * 2));
        Buffer[at] = new StackTop { State = s, Parent = q };
        result.Count++;
    }

    // A set of (state, parent) pairs seen in the current step: open addressing, cleared by bumping the stamp.
    private void NewVisit()
    {
        _visitCount = 0;
        if (++_stamp == int.MaxValue)
        {
            Array.Clear(_visitStamp);
            _stamp = 1;
        }
    }

    private bool MarkVisited(int s, int q)
    {
        if (_visitCount * 2 >= _visitKey.Length) GrowVisited();
        long key = ((long)s << 32) | (uint)q;
        int mask = _visitKey.Length - 1;
        int h = (int)((ulong)(key * unchecked((long)0x9E3779B97F4A7C15)) >> 40) & mask;
        while (_visitStamp[h] == _stamp)
        {
            if (_visitKey[h] == key) return false;
            h = (h + 1) & mask;
        }
        _visitStamp[h] = _stamp;
        _visitKey[h] = key;
        _visitCount++;
        return true;
    }

    private void GrowVisited()
    {
        long[] oldKeys = _visitKey;
        int[] oldStamps = _visitStamp;
        int oldStamp = _stamp;
        _visitKey = new long[oldKeys.Length * 2];
        _visitStamp = new int[oldKeys.Length * 2];
        _stamp = 1;
        _visitCount = 0;
        for (int i = 0; i < oldKeys.Length; i++)
            if (oldStamps[i] == oldStamp) MarkVisited((int)(oldKeys[i] >> 32), (int)oldKeys[i]);
    }
}
