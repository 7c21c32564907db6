using System.Globalization;

namespace Gemma.Core.Constraints;

/// <summary>
/// GBNF, llama.cpp's grammar format: <c>name ::= alternatives</c> rules, <c>"literals"</c> with escapes
/// (<c>\n \t \r \\ \" \xHH \uHHHH \UHHHHHHHH</c>), classes <c>[a-z]</c> <c>[^…]</c>, <c>.</c>, groups, <c>|</c>,
/// <c>* + ? {m} {m,} {m,n}</c>, <c>#</c> comments; start rule <c>root</c>. A rule ends at a newline except inside
/// parentheses and after <c>::=</c> or <c>|</c>, as in llama.cpp. Token references (<c>&lt;…&gt;</c>) are not supported.
/// </summary>
internal sealed class GbnfParser
{
    private const int MaxCount = 10_000;
    private readonly string _src;
    private int _pos;

    private GbnfParser(string source) => _src = source;

    public static GrammarDefinition Parse(string source)
    {
        var parser = new GbnfParser(source);
        var def = new GrammarDefinition("root");
        parser.Space(newlines: true);
        while (parser._pos < source.Length)
        {
            parser.Rule(def);
            parser.Space(newlines: true);
        }
        if (!def.Contains("root")) throw new GemmaException("GBNF: the grammar has no 'root' rule (the start rule).");
        return def;
    }

    private GemmaException Error(string message)
    {
        int line = 1, column = 1;
        for (int i = 0; i < _pos && i < _src.Length; i++)
        {
            if (_src[i] == '\n') { line++; column = 1; }
            else column++;
        }
        return new GemmaException($"GBNF: line {line}, column {column}: {message}.");
    }

    private bool More => _pos < _src.Length;
    private char Peek => _src[_pos];

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_';

    private void Space(bool newlines)
    {
        while (More)
        {
            char c = Peek;
            if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) _pos++;
            else if (c == '#')
            {
                while (More && Peek != '\n' && Peek != '\r') _pos++;
            }
            else break;
        }
    }

    private string Name()
    {
        int start = _pos;
        while (More && IsWordChar(Peek)) _pos++;
        if (_pos == start) throw Error(More ? $"expected a rule name, found '{Peek}'" : "expected a rule name, found the end");
        return _src[start.._pos];
    }

    private void Rule(GrammarDefinition def)
    {
        string name = Name();
        Space(newlines: false);
        if (!_src.AsSpan(_pos).StartsWith("::=")) throw Error($"expected '::=' after rule name '{name}'");
        _pos += 3;
        Space(newlines: true);
        Expr body = Alternates(nested: false, depth: 0);
        if (More && Peek == '\r') _pos++;
        if (More && Peek == '\n') _pos++;
        else if (More) throw Error($"expected a newline or the end after rule '{name}', found '{Peek}'");
        if (def.Contains(name)) throw Error($"rule '{name}' is defined twice");
        def.Add(name, body);
    }

    private Expr Alternates(bool nested, int depth)
    {
        var alternatives = new List<Expr> { Sequence(nested, depth) };
        while (More && Peek == '|')
        {
            _pos++;
            Space(newlines: true);
            alternatives.Add(Sequence(nested, depth));
        }
        return Expr.Alt([.. alternatives]);
    }

    private Expr Sequence(bool nested, int depth)
    {
        if (depth > 500) throw Error("groups nested more than 500 deep");
        var items = new List<Expr>();
        while (More)
        {
            char c = Peek;
            Expr item;
            if (c == '"')
            {
                _pos++;
                var text = new System.Text.StringBuilder();
                while (true)
                {
                    if (!More || Peek == '\n') throw Error("unterminated string literal");
                    if (Peek == '"') { _pos++; break; }
                    text.Append(char.ConvertFromUtf32(Char()));
                }
                item = Expr.Lit(text.ToString());
            }
            else if (c == '[')
            {
                _pos++;
                bool negate = More && Peek == '^';
                if (negate) _pos++;
                var ranges = new List<(int, int)>();
                while (true)
                {
                    if (!More) throw Error("unterminated character class");
                    if (Peek == ']') { _pos++; break; }
                    int lo = Char();
                    int hi = lo;
                    if (More && Peek == '-' && _pos + 1 < _src.Length && _src[_pos + 1] != ']')
                    {
                        _pos++;
                        hi = Char();
                        if (hi < lo) throw Error("character range out of order");
                    }
                    ranges.Add((lo, hi));
                }
                (int, int)[] set = CodeRanges.Normalize(ranges);
                if (negate) set = CodeRanges.Complement(set);
                set = CodeRanges.Subtract(set, [(0xD800, 0xDFFF)]);
                if (set.Length == 0) throw Error("empty character class");
                item = new CharClassExpr(set);
            }
            else if (c == '.')
            {
                _pos++;
                item = new CharClassExpr([(0, CodeRanges.MaxCodePoint)]);
            }
            else if (c == '(')
            {
                _pos++;
                Space(newlines: true);
                item = Alternates(nested: true, depth + 1);
                if (!More || Peek != ')') throw Error("expected ')'");
                _pos++;
            }
            else if (IsWordChar(c))
            {
                item = Expr.Ref(Name());
            }
            else if (c == '<') throw Error("token references (<...>) are not supported");
            else break;

            Space(nested);
            while (More && (Peek is '*' or '+' or '?' or '{'))
            {
                char q = Peek;
                _pos++;
                if (q == '*') item = Expr.Star(item);
                else if (q == '+') item = Expr.Plus(item);
                else if (q == '?') item = Expr.Opt(item);
                else item = Counted(item);
                Space(nested);
            }
            items.Add(item);
        }
        return Expr.Seq([.. items]);
    }

    private Expr Counted(Expr item)
    {
        Space(false);
        int min = Int();
        int max = min;
        Space(false);
        if (More && Peek == ',')
        {
            _pos++;
            Space(false);
            max = More && char.IsAsciiDigit(Peek) ? Int() : -1;
            Space(false);
        }
        if (!More || Peek != '}') throw Error("expected '}'");
        _pos++;
        if (max >= 0 && max < min) throw Error($"repetition {{{min},{max}}}: maximum below minimum");
        return Expr.Repeat(item, min, max);
    }

    private int Int()
    {
        int start = _pos;
        while (More && char.IsAsciiDigit(Peek)) _pos++;
        if (start == _pos) throw Error("expected a number");
        if (!int.TryParse(_src.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v > MaxCount)
            throw Error($"repetition counts above {MaxCount} are not supported");
        return v;
    }

    /// <summary>One (possibly escaped) character of a literal or class, as a code point.</summary>
    private int Char()
    {
        char c = _src[_pos++];
        if (c == '\\')
        {
            if (!More) throw Error("trailing backslash");
            char e = _src[_pos++];
            switch (e)
            {
                case 'x': return HexDigits(2);
                case 'u': return HexDigits(4);
                case 'U': return HexDigits(8);
                case 't': return '\t';
                case 'r': return '\r';
                case 'n': return '\n';
                case '\\' or '"' or '[' or ']' or '-' or '^': return e;
                default: throw Error($"unknown escape '\\{e}'");
            }
        }
        if (char.IsHighSurrogate(c) && More && char.IsLowSurrogate(Peek)) return char.ConvertToUtf32(c, _src[_pos++]);
        if (char.IsSurrogate(c)) throw Error("invalid UTF-16 in the grammar text");
        return c;
    }

    private int HexDigits(int n)
    {
        if (_pos + n > _src.Length || !int.TryParse(_src.AsSpan(_pos, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
            throw Error($"expected {n} hexadecimal digits");
        _pos += n;
        if (v < 0 || v > CodeRanges.MaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) throw Error("escape is not a Unicode scalar value");
        return v;
    }
}
