using System.Text;

namespace Gemma.Core.Constraints;

/// <summary>
/// The grammar IR every input (JSON Schema, GBNF, regex) is translated to: rules whose bodies are regular expressions
/// over Unicode code points and references to other rules. <see cref="GrammarCompiler"/> turns it into byte-level
/// automata (one DFA per rule) that <see cref="GrammarMatcher"/> runs as a pushdown automaton.
/// </summary>
internal abstract record Expr
{
    public static readonly Expr Empty = new SeqExpr([]);

    public static Expr Lit(string text) => new LiteralExpr(text);
    public static Expr Ref(string rule) => new RefExpr(rule);
    public static Expr Seq(params Expr[] items) => items.Length == 1 ? items[0] : new SeqExpr(items);
    public static Expr Alt(params Expr[] items) => items.Length == 1 ? items[0] : new AltExpr(items);
    public static Expr Opt(Expr e) => new RepeatExpr(e, 0, 1);
    public static Expr Star(Expr e) => new RepeatExpr(e, 0, -1);
    public static Expr Plus(Expr e) => new RepeatExpr(e, 1, -1);
    public static Expr Repeat(Expr e, int min, int max) => new RepeatExpr(e, min, max);
    public static Expr Chars(params (int Lo, int Hi)[] ranges) => new CharClassExpr(CodeRanges.Normalize(ranges));
    public static Expr Chars(string members) => new CharClassExpr(CodeRanges.Normalize(members.EnumerateRunes().Select(r => (r.Value, r.Value))));
}

/// <summary>A literal string, matched as its UTF-8 bytes.</summary>
internal sealed record LiteralExpr(string Text) : Expr;

/// <summary>One code point out of a set (sorted, disjoint, non-adjacent inclusive ranges; surrogates never match).</summary>
internal sealed record CharClassExpr((int Lo, int Hi)[] Ranges) : Expr;

/// <summary>One raw byte in [Lo, Hi] (regardless of UTF-8 structure).</summary>
internal sealed record ByteRangeExpr(byte Lo, byte Hi) : Expr;

/// <summary>A reference to a rule by name.</summary>
internal sealed record RefExpr(string Rule) : Expr;

internal sealed record SeqExpr(Expr[] Items) : Expr;

internal sealed record AltExpr(Expr[] Items) : Expr;

/// <summary><c>Inner{Min,Max}</c>; Max = -1 means unbounded.</summary>
internal sealed record RepeatExpr(Expr Inner, int Min, int Max) : Expr;

/// <summary>A grammar: named rules and the start rule. Rule order is kept for messages.</summary>
internal sealed class GrammarDefinition
{
    private readonly Dictionary<string, Expr> _rules = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public GrammarDefinition(string root) => Root = root;

    public string Root { get; }

    public IReadOnlyList<string> RuleNames => _order;

    public Expr this[string name] => _rules[name];

    public bool Contains(string name) => _rules.ContainsKey(name);

    public void Add(string name, Expr body)
    {
        if (!_rules.TryAdd(name, body)) throw new GemmaException($"Grammar: rule '{name}' is defined twice.");
        _order.Add(name);
    }

    public void Set(string name, Expr body)
    {
        if (!_rules.ContainsKey(name)) _order.Add(name);
        _rules[name] = body;
    }
}

/// <summary>Sets of Unicode scalar values as sorted inclusive ranges.</summary>
internal static class CodeRanges
{
    public const int MaxCodePoint = 0x10FFFF;

    public static (int Lo, int Hi)[] Normalize(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var list = ranges.Where(r => r.Lo <= r.Hi).OrderBy(r => r.Lo).ToList();
        var result = new List<(int Lo, int Hi)>();
        foreach ((int lo, int hi) in list)
        {
            if (result.Count > 0 && lo <= result[^1].Hi + 1)
                result[^1] = (result[^1].Lo, Math.Max(result[^1].Hi, hi));
            else
                result.Add((lo, hi));
        }
        return [.. result];
    }

    public static (int Lo, int Hi)[] Complement((int Lo, int Hi)[] ranges)
    {
        var result = new List<(int Lo, int Hi)>();
        int next = 0;
        foreach ((int lo, int hi) in Normalize(ranges))
        {
            if (lo > next) result.Add((next, lo - 1));
            next = hi + 1;
        }
        if (next <= MaxCodePoint) result.Add((next, MaxCodePoint));
        return [.. result];
    }

    public static (int Lo, int Hi)[] Subtract((int Lo, int Hi)[] a, (int Lo, int Hi)[] b) =>
        Complement([.. Complement(a), .. b]);

    public static bool Contains((int Lo, int Hi)[] ranges, int c)
    {
        foreach ((int lo, int hi) in ranges) if (c >= lo && c <= hi) return true;
        return false;
    }

    /// <summary>
    /// The UTF-8 encodings of the scalar values in [lo, hi] as sequences of byte ranges (each sequence matches exactly
    /// the encodings of one sub-range; surrogates and overlong forms never match). The classic splitting of
    /// Rust's regex-syntax <c>Utf8Sequences</c>.
    /// </summary>
    public static void Utf8Sequences(int lo, int hi, List<(byte Lo, byte Hi)[]> output)
    {
        if (lo > hi) return;
        if (lo <= 0xDFFF && hi >= 0xD800)
        {
            Utf8Sequences(lo, 0xD7FF, output);
            Utf8Sequences(0xE000, hi, output);
            return;
        }
        foreach (int boundary in (ReadOnlySpan<int>)[0x7F, 0x7FF, 0xFFFF])
        {
            if (lo <= boundary && hi > boundary)
            {
                Utf8Sequences(lo, boundary, output);
                Utf8Sequences(boundary + 1, hi, output);
                return;
            }
        }
        if (hi <= 0x7F)
        {
            output.Add([((byte)lo, (byte)hi)]);
            return;
        }
        for (int i = 1; i < 4; i++)
        {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m))
            {
                if ((lo & m) != 0)
                {
                    Utf8Sequences(lo, lo | m, output);
                    Utf8Sequences((lo | m) + 1, hi, output);
                    return;
                }
                if ((hi & m) != m)
                {
                    Utf8Sequences(lo, (hi & ~m) - 1, output);
                    Utf8Sequences(hi & ~m, hi, output);
                    return;
                }
            }
        }
        Span<byte> a = stackalloc byte[4], b = stackalloc byte[4];
        int n = new Rune(lo).EncodeToUtf8(a);
        new Rune(hi).EncodeToUtf8(b);
        var seq = new (byte, byte)[n];
        for (int k = 0; k < n; k++) seq[k] = (a[k], b[k]);
        output.Add(seq);
    }
}
