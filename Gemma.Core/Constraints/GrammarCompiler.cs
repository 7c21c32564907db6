using System.Text;

namespace Gemma.Core.Constraints;

/// <summary>
/// A grammar compiled to byte-level automata: one deterministic automaton per rule over byte classes, whose edges are
/// either bytes or calls of other rules. <see cref="GrammarMatcher"/> runs it as a pushdown automaton.
/// </summary>
/// <remarks>
/// Every state can still reach its rule's end (dead states are pruned), and every rule can derive a finite string, so
/// any prefix the matcher accepts can be completed — the property that makes constrained output always valid.
/// </remarks>
internal sealed class CompiledGrammar
{
    public const int Unreachable = int.MaxValue / 4;

    public required string[] RuleNames { get; init; }
    public required int[] RuleStart { get; init; }     // (rule) start state
    public required int[] RuleMinLength { get; init; } // (rule) fewest bytes the rule can derive
    public required int Root { get; init; }
    public required byte[] ByteClass { get; init; }    // (256) byte -> class
    public required int ClassCount { get; init; }
    public required int[] Next { get; init; }          // (state, class) -> state or -1
    public required (int Rule, int Target)[][] Calls { get; init; } // (state) rule calls leaving the state
    public required bool[] Final { get; init; }        // (state) the rule may end here
    public required bool[] HasBytes { get; init; }     // (state) some byte leaves the state
    public required int[] Distance { get; init; }      // (state) fewest bytes to the rule's end

    public int StateCount => Final.Length;

    /// <summary>(state) neither calls nor may end: reading into it is a plain DFA step (the token walks' fast path).</summary>
    public bool[] Plain => _plain ??= [.. Enumerable.Range(0, StateCount).Select(s => Calls[s].Length == 0 && !Final[s])];
    private bool[]? _plain;

    /// <summary>A <see cref="RunLength"/> that no string length reaches: the state reads such bytes forever.</summary>
    public const int Unbounded = 1000;
    private short[]? _run; // (state * AsciiClasses.Count + class) RunLength + 1; 0 = not computed yet

    /// <summary>
    /// How many bytes of <see cref="AsciiClasses"/> class <paramref name="cls"/> the state surely reads: every string
    /// of that class up to this length keeps it alive through plain states (no call, no possible end), so a token
    /// trie subtree of such bytes no higher than this is accepted whole. A counted run <c>[a-z]{0,7}</c> gives 7 for
    /// lower case, a JSON string body <see cref="Unbounded"/> for printable ASCII. Learned once per (state, class);
    /// racing threads compute the same value.
    /// </summary>
    public int RunLength(int state, int cls)
    {
        short[] run = RunTable;
        int v = run[state * AsciiClasses.Count + cls];
        if (v == 0) run[state * AsciiClasses.Count + cls] = (short)(v = ComputeRunLength(state, cls) + 1);
        return v - 1;
    }

    /// <summary>(state * AsciiClasses.Count + class) <see cref="RunLength"/> + 1, or 0 where not learned yet (read by the walks' hot loop).</summary>
    public short[] RunTable => _run ?? Interlocked.CompareExchange(ref _run, new short[StateCount * AsciiClasses.Count], null) ?? _run!;

    private int ComputeRunLength(int state, int cls)
    {
        // One byte per grammar byte class inside the ASCII class stands for all of them.
        var bytes = new List<byte>();
        var seenClass = new bool[ClassCount];
        for (int b = 0; b < 128; b++)
            if ((AsciiClasses.Of[b] & (1 << cls)) != 0 && !seenClass[ByteClass[b]]) { seenClass[ByteClass[b]] = true; bytes.Add((byte)b); }
        // The set of states after L bytes, level by level; a set met before means a cycle that never fails.
        bool[] plain = Plain;
        int[] current = [state];
        var levels = new List<int[]> { current };
        var next = new SortedSet<int>();
        for (int length = 1; length < 255; length++)
        {
            next.Clear();
            foreach (int s in current)
                foreach (byte b in bytes)
                {
                    int t = Step(s, b);
                    if (t < 0 || !plain[t]) return length - 1;
                    next.Add(t);
                }
            current = [.. next];
            foreach (int[] level in levels)
                if (level.AsSpan().SequenceEqual(current)) return Unbounded;
            levels.Add(current);
        }
        return 254;
    }

    /// <summary>The state reached from <paramref name="state"/> on <paramref name="b"/>, or -1.</summary>
    public int Step(int state, byte b) => Next[state * ClassCount + ByteClass[b]];

    /// <summary>A state with no way on: the rule ends here and nothing else can happen (a tail call's return).</summary>
    public bool IsTail(int state) => Final[state] && !HasBytes[state] && Calls[state].Length == 0;
}

/// <summary>Turns a <see cref="GrammarDefinition"/> into a <see cref="CompiledGrammar"/>.</summary>
internal static class GrammarCompiler
{
    /// <summary>Caps that keep hostile grammars bounded in time and memory.</summary>
    public const int MaxNfaStates = 400_000, MaxDfaStates = 100_000;

    private sealed class Nfa
    {
        public readonly List<List<(byte Lo, byte Hi, int To)>> Bytes = [];
        public readonly List<List<(int Rule, int To)>> Calls = [];
        public readonly List<List<int>> Eps = [];

        public int Add()
        {
            if (Bytes.Count >= MaxNfaStates)
                throw new GemmaException($"Grammar: too large (more than {MaxNfaStates} automaton states); reduce repetition counts or lengths.");
            Bytes.Add([]);
            Calls.Add([]);
            Eps.Add([]);
            return Bytes.Count - 1;
        }
    }

    public static CompiledGrammar Compile(GrammarDefinition def)
    {
        if (!def.Contains(def.Root)) throw new GemmaException($"Grammar: the start rule '{def.Root}' is not defined.");
        // Only rules reachable from the root are compiled (unused ones may even be broken, as in llama.cpp).
        var names = new List<string>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var pending = new Queue<string>();
        void Visit(string name)
        {
            if (index.ContainsKey(name)) return;
            index[name] = names.Count;
            names.Add(name);
            pending.Enqueue(name);
        }
        Visit(def.Root);
        while (pending.Count > 0)
        {
            string name = pending.Dequeue();
            foreach (string r in References(def[name]))
            {
                if (!def.Contains(r)) throw new GemmaException($"Grammar: rule '{name}' refers to undefined rule '{r}'.");
                Visit(r);
            }
        }

        var nfa = new Nfa();
        var starts = new int[names.Count];
        var ends = new int[names.Count];
        for (int r = 0; r < names.Count; r++)
        {
            starts[r] = nfa.Add();
            ends[r] = Build(nfa, def[names[r]], starts[r], index, 0);
        }

        // Byte classes: bytes no edge tells apart share a class (JSON grammars need a few dozen).
        var cuts = new bool[257];
        cuts[0] = true;
        cuts[256] = true;
        foreach (var list in nfa.Bytes)
            foreach ((byte lo, byte hi, _) in list) { cuts[lo] = true; cuts[hi + 1] = true; }
        var byteClass = new byte[256];
        int classes = 0;
        var representative = new List<byte>();
        for (int b = 0; b < 256; b++)
        {
            if (cuts[b]) { classes++; representative.Add((byte)b); }
            byteClass[b] = (byte)(classes - 1);
        }

        var isEnd = new bool[nfa.Bytes.Count];
        foreach (int e in ends) isEnd[e] = true;
        // Subset construction, one rule at a time.
        var stateSets = new List<int[]>();
        var stateIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var next = new List<int>();
        var calls = new List<(int Rule, int Target)[]>();
        var final = new List<bool>();
        var ruleStart = new int[names.Count];
        var work = new Queue<int>();
        int StateOf(SortedSet<int> set, int rule)
        {
            string key = rule + ":" + string.Join(',', set);
            if (stateIds.TryGetValue(key, out int id)) return id;
            if (stateSets.Count >= MaxDfaStates)
                throw new GemmaException($"Grammar: too complex (more than {MaxDfaStates} automaton states after determinization).");
            id = stateSets.Count;
            stateIds[key] = id;
            stateSets.Add([.. set]);
            for (int c = 0; c < classes; c++) next.Add(-1);
            calls.Add([]);
            final.Add(set.Contains(ends[rule]));
            work.Enqueue(id);
            return id;
        }
        for (int r = 0; r < names.Count; r++)
        {
            ruleStart[r] = StateOf(EpsClosure(nfa, [starts[r]], isEnd), r);
            while (work.Count > 0)
            {
                int s = work.Dequeue();
                int[] set = stateSets[s];
                for (int c = 0; c < classes; c++)
                {
                    byte rep = representative[c];
                    var targets = new SortedSet<int>();
                    foreach (int q in set)
                        foreach ((byte lo, byte hi, int to) in nfa.Bytes[q])
                            if (rep >= lo && rep <= hi) targets.Add(to);
                    if (targets.Count > 0) next[s * classes + c] = StateOf(EpsClosure(nfa, targets, isEnd), r);
                }
                var byRule = new SortedDictionary<int, SortedSet<int>>();
                foreach (int q in set)
                    foreach ((int rule, int to) in nfa.Calls[q])
                    {
                        if (!byRule.TryGetValue(rule, out var t)) byRule[rule] = t = [];
                        t.Add(to);
                    }
                calls[s] = [.. byRule.Select(kv => (kv.Key, StateOf(EpsClosure(nfa, kv.Value, isEnd), r)))];
            }
        }

        int n = stateSets.Count;
        int[] nextArr = [.. next];
        bool[] finalArr = [.. final];
        (int Rule, int Target)[][] callsArr = [.. calls];
        var distance = new int[n];
        var minLen = new int[names.Count];
        ComputeDistances(nextArr, callsArr, finalArr, classes, ruleStart, distance, minLen);

        for (int r = 0; r < names.Count; r++)
            if (minLen[r] >= CompiledGrammar.Unreachable)
                throw new GemmaException($"Grammar: rule '{names[r]}' can never be completed (every alternative recurses forever or is impossible).");

        // Prune edges into dead states so that the matcher never enters a state it cannot finish from.
        var hasBytes = new bool[n];
        for (int s = 0; s < n; s++)
        {
            for (int c = 0; c < classes; c++)
            {
                int t = nextArr[s * classes + c];
                if (t >= 0 && distance[t] >= CompiledGrammar.Unreachable) nextArr[s * classes + c] = t = -1;
                if (t >= 0) hasBytes[s] = true;
            }
            callsArr[s] = [.. callsArr[s].Where(e => distance[e.Target] < CompiledGrammar.Unreachable)];
        }

        var grammar = new CompiledGrammar
        {
            RuleNames = [.. names], RuleStart = ruleStart, RuleMinLength = minLen, Root = 0,
            ByteClass = byteClass, ClassCount = classes, Next = nextArr, Calls = callsArr, Final = finalArr,
            HasBytes = hasBytes, Distance = distance,
        };
        CheckLeftRecursion(grammar);
        return grammar;
    }

    private static IEnumerable<string> References(Expr e)
    {
        var stack = new Stack<Expr>();
        stack.Push(e);
        while (stack.Count > 0)
        {
            switch (stack.Pop())
            {
                case RefExpr r: yield return r.Rule; break;
                case SeqExpr s: foreach (Expr x in s.Items) stack.Push(x); break;
                case AltExpr a: foreach (Expr x in a.Items) stack.Push(x); break;
                case RepeatExpr rep: stack.Push(rep.Inner); break;
            }
        }
    }

    /// <summary>Thompson construction: adds <paramref name="e"/> starting at <paramref name="from"/>; returns its end state.</summary>
    private static int Build(Nfa nfa, Expr e, int from, Dictionary<string, int> index, int depth)
    {
        if (depth > 2000) throw new GemmaException("Grammar: expressions nested more than 2000 deep.");
        switch (e)
        {
            case LiteralExpr lit:
            {
                int cur = from;
                foreach (byte b in Encoding.UTF8.GetBytes(lit.Text))
                {
                    int to = nfa.Add();
                    nfa.Bytes[cur].Add((b, b, to));
                    cur = to;
                }
                return cur;
            }
            case ByteRangeExpr br:
            {
                int to = nfa.Add();
                nfa.Bytes[from].Add((br.Lo, br.Hi, to));
                return to;
            }
            case CharClassExpr cls:
            {
                int end = nfa.Add();
                var seqs = new List<(byte Lo, byte Hi)[]>();
                foreach ((int lo, int hi) in cls.Ranges) CodeRanges.Utf8Sequences(lo, hi, seqs);
                foreach (var seq in seqs)
                {
                    int cur = from;
                    for (int k = 0; k < seq.Length; k++)
                    {
                        int to = k == seq.Length - 1 ? end : nfa.Add();
                        nfa.Bytes[cur].Add((seq[k].Lo, seq[k].Hi, to));
                        cur = to;
                    }
                }
                return end;
            }
            case RefExpr r:
            {
                int to = nfa.Add();
                nfa.Calls[from].Add((index[r.Rule], to));
                return to;
            }
            case SeqExpr seq:
            {
                int cur = from;
                foreach (Expr item in seq.Items) cur = Build(nfa, item, cur, index, depth + 1);
                return cur;
            }
            case AltExpr alt:
            {
                int end = nfa.Add();
                foreach (Expr item in alt.Items)
                {
                    int start = nfa.Add();
                    nfa.Eps[from].Add(start);
                    nfa.Eps[Build(nfa, item, start, index, depth + 1)].Add(end);
                }
                return end;
            }
            case RepeatExpr rep:
            {
                int cur = from;
                for (int i = 0; i < rep.Min; i++)
                {
                    int start = nfa.Add();
                    nfa.Eps[cur].Add(start);
                    cur = Build(nfa, rep.Inner, start, index, depth + 1);
                }
                if (rep.Max < 0)
                {
                    // Star: a junction state; the body starts from a fresh state and returns to the junction.
                    int junction = nfa.Add();
                    nfa.Eps[cur].Add(junction);
                    int start = nfa.Add();
                    nfa.Eps[junction].Add(start);
                    nfa.Eps[Build(nfa, rep.Inner, start, index, depth + 1)].Add(junction);
                    return junction;
                }
                int end = nfa.Add();
                nfa.Eps[cur].Add(end);
                for (int i = rep.Min; i < rep.Max; i++)
                {
                    int start = nfa.Add();
                    nfa.Eps[cur].Add(start);
                    cur = Build(nfa, rep.Inner, start, index, depth + 1);
                    nfa.Eps[cur].Add(end);
                }
                return end;
            }
            default:
                throw new InvalidOperationException($"Unknown grammar expression {e.GetType().Name}.");
        }
    }

    private static SortedSet<int> EpsClosure(Nfa nfa, IEnumerable<int> seeds, bool[] isEnd)
    {
        var set = new SortedSet<int>();
        var stack = new Stack<int>(seeds);
        while (stack.Count > 0)
        {
            int s = stack.Pop();
            if (!set.Add(s)) continue;
            foreach (int t in nfa.Eps[s]) stack.Push(t);
        }
        // Only states that do something (or end the rule) matter for the subset's identity.
        set.RemoveWhere(s => !isEnd[s] && nfa.Bytes[s].Count == 0 && nfa.Calls[s].Count == 0);
        return set;
    }

    /// <summary>Fewest bytes from each state to its rule's end, and each rule's shortest derivation (a fixed point).</summary>
    private static void ComputeDistances(int[] next, (int Rule, int Target)[][] calls, bool[] final, int classes,
        int[] ruleStart, int[] distance, int[] minLen)
    {
        const int inf = CompiledGrammar.Unreachable;
        Array.Fill(distance, inf);
        Array.Fill(minLen, inf);
        for (int s = 0; s < final.Length; s++) if (final[s]) distance[s] = 0;
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int r = 0; r < ruleStart.Length; r++)
                if (distance[ruleStart[r]] < minLen[r]) { minLen[r] = distance[ruleStart[r]]; changed = true; }
            for (int s = final.Length - 1; s >= 0; s--)
            {
                int best = distance[s];
                for (int c = 0; c < classes; c++)
                {
                    int t = next[s * classes + c];
                    if (t >= 0 && distance[t] < inf) best = Math.Min(best, 1 + distance[t]);
                }
                foreach ((int rule, int t) in calls[s])
                    if (minLen[rule] < inf && distance[t] < inf) best = Math.Min(best, Math.Min(inf, minLen[rule] + distance[t]));
                if (best < distance[s]) { distance[s] = best; changed = true; }
            }
        }
    }

    /// <summary>A rule that can call itself before consuming a byte would make the matcher loop: it is an error.</summary>
    private static void CheckLeftRecursion(CompiledGrammar g)
    {
        int rules = g.RuleStart.Length;
        var leftCalls = new List<int>[rules];
        for (int r = 0; r < rules; r++)
        {
            var seen = new HashSet<int>();
            var stack = new Stack<int>();
            stack.Push(g.RuleStart[r]);
            var called = new HashSet<int>();
            while (stack.Count > 0)
            {
                int s = stack.Pop();
                if (!seen.Add(s)) continue;
                foreach ((int rule, int target) in g.Calls[s])
                {
                    called.Add(rule);
                    if (g.RuleMinLength[rule] == 0) stack.Push(target);
                }
            }
            leftCalls[r] = [.. called];
        }
        var color = new int[rules]; // 0 new, 1 on the path, 2 done
        var path = new List<int>();
        for (int r = 0; r < rules; r++) Dfs(r);
        void Dfs(int r)
        {
            if (color[r] == 2) return;
            if (color[r] == 1)
            {
                int at = path.IndexOf(r);
                string cycle = string.Join(" -> ", path.Skip(at).Append(r).Select(i => g.RuleNames[i]));
                throw new GemmaException($"Grammar: left recursion ({cycle}): a rule reaches itself without consuming input. Rewrite it with repetition (e.g. x ::= y (\",\" y)*).");
            }
            color[r] = 1;
            path.Add(r);
            foreach (int c in leftCalls[r]) Dfs(c);
            path.RemoveAt(path.Count - 1);
            color[r] = 2;
        }
    }
}
