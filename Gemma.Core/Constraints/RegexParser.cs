using System.Globalization;

namespace Gemma.Core.Constraints;

/// <summary>
/// A regular-expression subset (ECMAScript flavour, as JSON Schema's <c>pattern</c>) → grammar expression: literals,
/// <c>.</c>, classes <c>[a-z]</c> <c>[^…]</c>, <c>\d \w \s \D \W \S</c>, escapes (<c>\n \t \xHH \uHHHH</c>), groups
/// <c>(…)</c> <c>(?:…)</c> <c>(?&lt;name&gt;…)</c>, <c>|</c>, <c>* + ? {m} {m,} {m,n}</c> (lazy forms accepted, same language),
/// <c>^</c>/<c>$</c> at the ends. Backreferences, lookaround, word boundaries and Unicode properties are errors.
/// </summary>
internal sealed class RegexParser
{
    public enum Mode
    {
        /// <summary>The whole text matches (anchors are implied and allowed).</summary>
        Anchored,
        /// <summary>JSON Schema <c>pattern</c>: a search inside a JSON string body; characters are written JSON-escaped.</summary>
        JsonStringSearch,
    }

    private const int MaxCount = 1000;
    private static readonly (int, int)[] LineTerminators = [('\n', '\n'), ('\r', '\r'), (0x2028, 0x2029)];
    private static readonly (int, int)[] DigitSet = [('0', '9')];
    private static readonly (int, int)[] WordSet = [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
    private static readonly (int, int)[] SpaceSet = [('\t', '\r'), (' ', ' '), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
        (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)];

    private readonly string _p;
    private readonly Mode _mode;
    private int _pos;

    private RegexParser(string pattern, Mode mode)
    {
        _p = pattern;
        _mode = mode;
    }

    public static Expr Parse(string pattern, Mode mode)
    {
        var parser = new RegexParser(pattern, mode);
        Expr e = parser.Top();
        return e;
    }

    private GemmaException Error(string message) => new($"regex \"{_p}\": at position {_pos}: {message}.");

    private bool More => _pos < _p.Length;
    private char Peek => _p[_pos];

    private Expr Top()
    {
        var alternatives = new List<Expr>();
        while (true)
        {
            bool start = false, end = false;
            if (More && Peek == '^') { _pos++; start = true; }
            Expr seq = Sequence(0, ref end);
            if (_mode == Mode.JsonStringSearch)
            {
                Expr any = Expr.Star(JsonSchemaCompiler.JsonChar());
                seq = Expr.Seq(start ? Expr.Empty : any, seq, end ? Expr.Empty : any);
            }
            alternatives.Add(seq);
            if (!More) break;
            if (Peek == '|') { _pos++; continue; }
            throw Error($"unexpected '{Peek}'");
        }
        return Expr.Alt([.. alternatives]);
    }

    private Expr Alternation(int depth)
    {
        var alternatives = new List<Expr>();
        while (true)
        {
            bool end = false;
            alternatives.Add(Sequence(depth, ref end));
            if (end) throw Error("'$' inside a group is not supported");
            if (More && Peek == '|') { _pos++; continue; }
            return Expr.Alt([.. alternatives]);
        }
    }

    private Expr Sequence(int depth, ref bool end)
    {
        if (depth > 200) throw Error("groups nested too deeply");
        var items = new List<Expr>();
        while (More && Peek != '|' && Peek != ')')
        {
            if (Peek == '$')
            {
                _pos++;
                if (depth > 0 || (More && Peek != '|')) throw Error("'$' is only supported at the end");
                end = true;
                break;
            }
            if (Peek == '^') throw Error("'^' is only supported at the start");
            Expr atom = Atom(depth);
            items.Add(Quantified(atom));
        }
        return Expr.Seq([.. items]);
    }

    private Expr Quantified(Expr atom)
    {
        while (More)
        {
            int min, max;
            char c = Peek;
            if (c == '*') { min = 0; max = -1; _pos++; }
            else if (c == '+') { min = 1; max = -1; _pos++; }
            else if (c == '?') { min = 0; max = 1; _pos++; }
            else if (c == '{' && TryCount(out min, out max)) { }
            else return atom;
            if (More && Peek == '?') _pos++; // lazy: the same language
            else if (More && Peek == '+') throw Error("possessive quantifiers are not supported");
            atom = Expr.Repeat(atom, min, max);
        }
        return atom;
    }

    private bool TryCount(out int min, out int max)
    {
        min = max = 0;
        int close = _p.IndexOf('}', _pos);
        if (close < 0) return false;
        string body = _p[(_pos + 1)..close];
        string[] parts = body.Split(',');
        if (parts.Length > 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out min)) return false;
        if (parts.Length == 1) max = min;
        else if (parts[1].Length == 0) max = -1;
        else if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out max)) return false;
        if (min > MaxCount || max > MaxCount) throw Error($"repetition counts above {MaxCount} are not supported");
        if (max >= 0 && min > max) throw Error($"{{{body}}}: minimum above maximum");
        _pos = close + 1;
        return true;
    }

    private Expr Atom(int depth)
    {
        char c = _p[_pos++];
        switch (c)
        {
            case '(':
            {
                if (More && Peek == '?')
                {
                    if (_pos + 1 < _p.Length && _p[_pos + 1] == ':') _pos += 2;
                    else if (_pos + 2 < _p.Length && _p[_pos + 1] == '<' && _p[_pos + 2] is not ('=' or '!'))
                    {
                        int close = _p.IndexOf('>', _pos);
                        if (close < 0) throw Error("unterminated group name");
                        _pos = close + 1;
                    }
                    else throw Error("lookaround and other '(?' groups are not supported");
                }
                Expr inner = Alternation(depth + 1);
                if (!More || Peek != ')') throw Error("missing ')'");
                _pos++;
                return inner;
            }
            case ')': throw Error("unbalanced ')'");
            case '[': return Set(Class());
            case '.': return Set(CodeRanges.Complement(LineTerminators));
            case '\\': return EscapeAtom();
            case '*' or '+' or '?': throw Error($"'{c}' has nothing to repeat");
            default:
                if (char.IsHighSurrogate(c) && More && char.IsLowSurrogate(Peek)) return Set([(char.ConvertToUtf32(c, _p[_pos++]), char.ConvertToUtf32(c, _p[_pos - 1]))]);
                return Set([(c, c)]);
        }
    }

    private Expr EscapeAtom()
    {
        if (!More) throw Error("trailing backslash");
        char c = Peek;
        if (c is 'b' or 'B') throw Error("word boundaries (\\b, \\B) are not supported");
        if (c is >= '1' and <= '9') throw Error("backreferences are not supported");
        if (c is 'p' or 'P') throw Error("Unicode property escapes (\\p{…}) are not supported");
        return Set(Escape(inClass: false));
    }

    /// <summary>The set an escape stands for; <c>_pos</c> is just after the backslash.</summary>
    private (int, int)[] Escape(bool inClass)
    {
        char c = _p[_pos++];
        switch (c)
        {
            case 'd': return DigitSet;
            case 'D': return CodeRanges.Complement(DigitSet);
            case 'w': return WordSet;
            case 'W': return CodeRanges.Complement(WordSet);
            case 's': return SpaceSet;
            case 'S': return CodeRanges.Complement(SpaceSet);
            case 'n': return [('\n', '\n')];
            case 'r': return [('\r', '\r')];
            case 't': return [('\t', '\t')];
            case 'f': return [('\f', '\f')];
            case 'v': return [('\v', '\v')];
            case '0': return [(0, 0)];
            case 'b' when inClass: return [('\b', '\b')];
            case 'x': return [Single(Hex(2))];
            case 'u':
                if (More && Peek == '{')
                {
                    int close = _p.IndexOf('}', _pos);
                    if (close < 0) throw Error("unterminated \\u{…}");
                    _pos++;
                    (int, int) cp = Single(Hex(close - _pos));
                    _pos++; // '}'
                    return [cp];
                }
                return [Single(Hex(4))];
            default:
                if (char.IsLetterOrDigit(c)) throw Error($"unknown escape '\\{c}'");
                return [(c, c)];
        }
    }

    private static (int, int) Single(int c) => (c, c);

    private int Hex(int digits)
    {
        if (digits < 1 || digits > 6 || _pos + digits > _p.Length
            || !int.TryParse(_p.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
            throw Error("bad hexadecimal escape");
        _pos += digits;
        if (v > CodeRanges.MaxCodePoint) throw Error("code point out of range");
        return v;
    }

    private (int, int)[] Class()
    {
        bool negate = More && Peek == '^';
        if (negate) _pos++;
        var ranges = new List<(int, int)>();
        bool first = true;
        while (true)
        {
            if (!More) throw Error("missing ']'");
            char c = Peek;
            if (c == ']' && !first) { _pos++; break; }
            first = false;
            (int, int)[] lo = ClassAtom();
            if (lo.Length == 1 && lo[0].Item1 == lo[0].Item2 && _pos + 1 < _p.Length && Peek == '-' && _p[_pos + 1] != ']')
            {
                _pos++;
                (int, int)[] hi = ClassAtom();
                if (hi.Length != 1 || hi[0].Item1 != hi[0].Item2) throw Error("a range must end at a single character");
                if (hi[0].Item1 < lo[0].Item1) throw Error("range out of order");
                ranges.Add((lo[0].Item1, hi[0].Item1));
            }
            else ranges.AddRange(lo);
        }
        (int, int)[] set = CodeRanges.Normalize(ranges);
        return negate ? CodeRanges.Complement(set) : set;
    }

    private (int, int)[] ClassAtom()
    {
        char c = _p[_pos++];
        if (c == '\\')
        {
            if (!More) throw Error("trailing backslash");
            return Escape(inClass: true);
        }
        if (char.IsHighSurrogate(c) && More && char.IsLowSurrogate(Peek))
        {
            int cp = char.ConvertToUtf32(c, _p[_pos++]);
            return [(cp, cp)];
        }
        return [(c, c)];
    }

    /// <summary>One character of the set, as text (anchored mode) or JSON-escaped string content.</summary>
    private Expr Set((int, int)[] ranges)
    {
        ranges = CodeRanges.Subtract(ranges, [(0xD800, 0xDFFF)]);
        if (ranges.Length == 0) throw Error("an empty character set can never match");
        if (_mode == Mode.Anchored) return new CharClassExpr(ranges);
        var alternatives = new List<Expr>();
        (int, int)[] raw = CodeRanges.Subtract(ranges, [(0, 0x1F), ('"', '"'), ('\\', '\\')]);
        if (raw.Length > 0) alternatives.Add(new CharClassExpr(raw));
        if (CodeRanges.Contains(ranges, '"')) alternatives.Add(Expr.Lit("\\\""));
        if (CodeRanges.Contains(ranges, '\\')) alternatives.Add(Expr.Lit("\\\\"));
        for (int c = 0; c < 0x20; c++)
            if (CodeRanges.Contains(ranges, c)) alternatives.Add(Expr.Lit(JsonSchemaCompiler.Quote(((char)c).ToString())[1..^1]));
        return Expr.Alt([.. alternatives]);
    }
}
