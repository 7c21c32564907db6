using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gemma.Core.Constraints;

/// <summary>
/// JSON Schema → grammar. The output is JSON written one way (no whitespace but <c>", "</c> and <c>": "</c>,
/// properties in schema order, non-ASCII characters raw): a subset of the valid documents, so every output validates.
/// Every keyword is either translated exactly, restricted soundly (documented in <c>docs/structured-output.md</c>) or
/// rejected with a <see cref="GemmaException"/> naming it.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    private const int MaxRepeat = 10_000;

    private static readonly HashSet<string> Annotations = new(StringComparer.Ordinal)
    {
        "$schema", "$id", "$comment", "$anchor", "title", "description", "default", "examples", "readOnly", "writeOnly",
        "deprecated", "$defs", "definitions",
    };

    private static readonly HashSet<string> Supported = new(StringComparer.Ordinal)
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
        "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems",
    };

    private static readonly string[] AllTypes = ["object", "array", "string", "number", "integer", "boolean", "null"];

    private readonly GrammarDefinition _def = new("root");
    private readonly JsonElement _root;
    private readonly Dictionary<string, string> _refRules = new(StringComparer.Ordinal);
    private int _counter;

    private JsonSchemaCompiler(JsonElement root)
    {
        _root = root;
        AddCommonRules(_def);
    }

    public static GrammarDefinition Compile(JsonElement schema)
    {
        var c = new JsonSchemaCompiler(schema.Clone());
        c._def.Add("root", c.Schema(c._root, "#", 0));
        return c._def;
    }

    public static GrammarDefinition AnyJsonGrammar()
    {
        var def = new GrammarDefinition("root");
        AddCommonRules(def);
        def.Add("root", Expr.Ref("value"));
        return def;
    }

    // ---- the generic JSON rules ----------------------------------------------------------------------------------

    /// <summary>One JSON string character as written inside quotes: raw (no quote, backslash or control), or an escape;
    /// <c>\u</c> escapes exclude surrogates so every string decodes to valid Unicode.</summary>
    internal static Expr JsonChar() => Expr.Alt(
        Expr.Chars(CodeRanges.Subtract([(0, CodeRanges.MaxCodePoint)], [(0, 0x1F), ('"', '"'), ('\\', '\\')])),
        Expr.Seq(Expr.Lit("\\"), Expr.Alt(Expr.Chars("\"\\/bfnrt"), Expr.Seq(Expr.Lit("u"), Hex4NoSurrogate()))));

    private static Expr Hex() => Expr.Chars(('0', '9'), ('a', 'f'), ('A', 'F'));

    private static Expr Hex4NoSurrogate() => Expr.Alt(
        Expr.Seq(Expr.Chars(('0', '9'), ('a', 'c'), ('A', 'C'), ('e', 'f'), ('E', 'F')), Hex(), Hex(), Hex()),
        Expr.Seq(Expr.Chars("dD"), Expr.Chars(('0', '7')), Hex(), Hex()));

    private static void AddCommonRules(GrammarDefinition def)
    {
        def.Add("value", Expr.Alt(Expr.Ref("object"), Expr.Ref("array"), Expr.Ref("string"), Expr.Ref("number"),
            Expr.Lit("true"), Expr.Lit("false"), Expr.Lit("null")));
        Expr member = Expr.Seq(Expr.Ref("string"), Expr.Lit(": "), Expr.Ref("value"));
        def.Add("object", Expr.Seq(Expr.Lit("{"), Expr.Opt(Expr.Seq(member, Expr.Star(Expr.Seq(Expr.Lit(", "), member)))), Expr.Lit("}")));
        def.Add("array", Expr.Seq(Expr.Lit("["), Expr.Opt(Expr.Seq(Expr.Ref("value"), Expr.Star(Expr.Seq(Expr.Lit(", "), Expr.Ref("value"))))), Expr.Lit("]")));
        def.Add("string", Expr.Seq(Expr.Lit("\""), Expr.Star(JsonChar()), Expr.Lit("\"")));
        def.Add("number", Expr.Seq(IntegerDigits(true), Expr.Opt(Expr.Seq(Expr.Lit("."), Expr.Plus(Digit()))),
            Expr.Opt(Expr.Seq(Expr.Chars("eE"), Expr.Opt(Expr.Chars("+-")), Expr.Repeat(Digit(), 1, 2)))));
        def.Add("integer", IntegerDigits(true));
    }

    private static Expr Digit() => Expr.Chars(('0', '9'));

    private static Expr IntegerDigits(bool signed) =>
        Expr.Seq(signed ? Expr.Opt(Expr.Lit("-")) : Expr.Empty, Expr.Alt(Expr.Lit("0"), Expr.Seq(Expr.Chars(('1', '9')), Expr.Star(Digit()))));

    // ---- schemas ---------------------------------------------------------------------------------------------------

    private Expr Schema(JsonElement s, string path, int depth)
    {
        if (depth > 2000) throw Error(path, "schemas nested more than 2000 deep");
        if (s.ValueKind == JsonValueKind.True) return Expr.Ref("value");
        if (s.ValueKind == JsonValueKind.False) throw Error(path, "the schema 'false' allows no value");
        if (s.ValueKind != JsonValueKind.Object) throw Error(path, $"a schema must be an object or a boolean, got {s.ValueKind}");

        foreach (JsonProperty p in s.EnumerateObject())
        {
            if (Annotations.Contains(p.Name)) continue;
            if (!Supported.Contains(p.Name)) throw Error(path, $"keyword '{p.Name}' is not supported");
        }
        if (s.TryGetProperty("uniqueItems", out JsonElement unique) && unique.ValueKind != JsonValueKind.False)
            throw Error(path, "keyword 'uniqueItems': true is not supported (a grammar cannot forbid repeated items)");

        if (s.TryGetProperty("$ref", out JsonElement reference))
        {
            if (Constraining(s).Any(n => n != "$ref"))
                return Schema(MergeAllOf(s, path), path, depth + 1);
            return Expr.Ref(RuleForRef(reference, path, depth));
        }
        if (s.TryGetProperty("allOf", out _)) return Schema(MergeAllOf(s, path), path, depth + 1);
        if (s.TryGetProperty("anyOf", out JsonElement anyOf)) return Alternatives(s, anyOf, "anyOf", path, depth);
        if (s.TryGetProperty("oneOf", out JsonElement oneOf))
        {
            CheckDisjoint(oneOf, path);
            return Alternatives(s, oneOf, "oneOf", path, depth);
        }

        HashSet<string> types = Types(s, path);
        if (s.TryGetProperty("const", out JsonElement constant)) return Enumerated(s, [constant], types, path, "const");
        if (s.TryGetProperty("enum", out JsonElement values))
        {
            if (values.ValueKind != JsonValueKind.Array) throw Error(path, "'enum' must be an array");
            return Enumerated(s, [.. values.EnumerateArray()], types, path, "enum");
        }

        var alternatives = new List<Expr>();
        foreach (string type in AllTypes)
        {
            if (!types.Contains(type)) continue;
            if (type == "integer" && types.Contains("number") && !HasNumberBounds(s)) continue; // number covers it
            alternatives.Add(type switch
            {
                "object" => ObjectSchema(s, path, depth),
                "array" => ArraySchema(s, path, depth),
                "string" => StringSchema(s, path),
                "number" => NumberSchema(s, path, integer: false),
                "integer" => NumberSchema(s, path, integer: true),
                "boolean" => Expr.Alt(Expr.Lit("true"), Expr.Lit("false")),
                _ => Expr.Lit("null"),
            });
        }
        return Expr.Alt([.. alternatives]);
    }

    private static IEnumerable<string> Constraining(JsonElement s) =>
        s.EnumerateObject().Select(p => p.Name).Where(n => !Annotations.Contains(n));

    private static GemmaException Error(string path, string message) => new($"JSON schema: at {path}: {message}.");

    private string RuleForRef(JsonElement reference, string path, int depth)
    {
        if (reference.ValueKind != JsonValueKind.String) throw Error(path, "'$ref' must be a string");
        string r = reference.GetString()!;
        if (_refRules.TryGetValue(r, out string? name)) return name;
        JsonElement target = Resolve(r, path);
        name = "ref" + _counter++;
        _refRules[r] = name;
        _def.Add(name, Expr.Empty); // placeholder: the target may refer back to itself
        _def.Set(name, Schema(target, r, depth + 1));
        return name;
    }

    private JsonElement Resolve(string reference, string path)
    {
        if (!reference.StartsWith('#'))
            throw Error(path, $"'$ref': only references inside the schema (\"#...\") are supported, got \"{reference}\"");
        JsonElement at = _root;
        if (reference.Length == 1) return at;
        if (reference[1] != '/') throw Error(path, $"'$ref': anchors are not supported, got \"{reference}\"");
        foreach (string raw in reference[2..].Split('/'))
        {
            string token = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            if (at.ValueKind == JsonValueKind.Object && at.TryGetProperty(token, out JsonElement next)) at = next;
            else if (at.ValueKind == JsonValueKind.Array && int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i < at.GetArrayLength()) at = at[i];
            else throw Error(path, $"'$ref' \"{reference}\" does not resolve");
        }
        return at;
    }

    private JsonElement ResolveIfRef(JsonElement s, string path) =>
        s.ValueKind == JsonValueKind.Object && s.TryGetProperty("$ref", out JsonElement r) && !Constraining(s).Any(n => n != "$ref")
            ? Resolve(r.GetString() ?? "", path) : s;

    /// <summary>anyOf/oneOf: each alternative with the sibling keywords merged in (they apply to every branch).</summary>
    private Expr Alternatives(JsonElement s, JsonElement list, string keyword, string path, int depth)
    {
        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) throw Error(path, $"'{keyword}' must be a non-empty array");
        var siblings = new JsonObject();
        foreach (JsonProperty p in s.EnumerateObject())
            if (p.Name != keyword && !Annotations.Contains(p.Name)) siblings[p.Name] = JsonNode.Parse(p.Value.GetRawText());
        var alternatives = new List<Expr>();
        int i = 0;
        foreach (JsonElement alt in list.EnumerateArray())
        {
            string at = $"{path}/{keyword}/{i++}";
            if (siblings.Count == 0) { alternatives.Add(Schema(alt, at, depth + 1)); continue; }
            var merged = new JsonObject { ["allOf"] = new JsonArray(siblings.DeepClone(), JsonNode.Parse(alt.GetRawText())) };
            alternatives.Add(Schema(MergeAllOf(ToElement(merged), at), at, depth + 1));
        }
        return Expr.Alt([.. alternatives]);
    }

    /// <summary>
    /// oneOf is accepted only when no value can match two alternatives, checked simply: the alternatives have disjoint
    /// types, disjoint const/enum values, or a required property with disjoint const/enum values (a tagged union).
    /// </summary>
    private void CheckDisjoint(JsonElement list, string path)
    {
        if (list.ValueKind != JsonValueKind.Array) throw Error(path, "'oneOf' must be an array");
        JsonElement[] alts = [.. list.EnumerateArray().Select(a => ResolveIfRef(a, path))];
        for (int i = 0; i < alts.Length; i++)
            for (int j = i + 1; j < alts.Length; j++)
                if (!Disjoint(alts[i], alts[j], path))
                    throw Error(path, $"'oneOf' alternatives {i} and {j} may both match a value, so exactly-one cannot be guaranteed; use 'anyOf', or tell them apart by type or by a required property with different 'const' values");
    }

    private bool Disjoint(JsonElement a, JsonElement b, string path)
    {
        if (a.ValueKind != JsonValueKind.Object || b.ValueKind != JsonValueKind.Object) return false;
        HashSet<string> ta = Types(a, path), tb = Types(b, path);
        if (ta.Contains("number")) ta.Add("integer");
        if (tb.Contains("number")) tb.Add("integer");
        if (!ta.Overlaps(tb)) return true;
        HashSet<string>? va = Values(a), vb = Values(b);
        if (va is not null && vb is not null && !va.Overlaps(vb)) return true;
        if (a.TryGetProperty("properties", out JsonElement pa) && b.TryGetProperty("properties", out JsonElement pb)
            && pa.ValueKind == JsonValueKind.Object && pb.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty p in pa.EnumerateObject())
            {
                if (!IsRequired(a, p.Name) || !IsRequired(b, p.Name) || !pb.TryGetProperty(p.Name, out JsonElement q)) continue;
                HashSet<string>? x = Values(ResolveIfRef(p.Value, path)), y = Values(ResolveIfRef(q, path));
                if (x is not null && y is not null && !x.Overlaps(y)) return true;
            }
        }
        return false;
    }

    private static bool IsRequired(JsonElement s, string name) =>
        s.TryGetProperty("required", out JsonElement r) && r.ValueKind == JsonValueKind.Array
        && r.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.String && e.GetString() == name);

    private static HashSet<string>? Values(JsonElement s)
    {
        if (s.ValueKind != JsonValueKind.Object) return null;
        if (s.TryGetProperty("const", out JsonElement c)) return [Canonical(c)];
        if (s.TryGetProperty("enum", out JsonElement e) && e.ValueKind == JsonValueKind.Array) return [.. e.EnumerateArray().Select(Canonical)];
        return null;
    }

    /// <summary>The instance types a schema allows: 'type' if given, else those its keywords imply, else all.</summary>
    private static HashSet<string> Types(JsonElement s, string path)
    {
        if (s.TryGetProperty("type", out JsonElement t))
        {
            var set = new HashSet<string>(StringComparer.Ordinal);
            IEnumerable<JsonElement> items = t.ValueKind == JsonValueKind.Array ? t.EnumerateArray() : [t];
            foreach (JsonElement item in items)
            {
                string? name = item.ValueKind == JsonValueKind.String ? item.GetString() : null;
                if (name is null || !AllTypes.Contains(name)) throw Error(path, $"'type' {item.GetRawText()} is not a JSON Schema type");
                set.Add(name);
            }
            if (set.Count == 0) throw Error(path, "'type' is an empty array");
            return set;
        }
        var implied = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty p in s.EnumerateObject())
        {
            switch (p.Name)
            {
                case "properties" or "required" or "additionalProperties": implied.Add("object"); break;
                case "items" or "prefixItems" or "minItems" or "maxItems": implied.Add("array"); break;
                case "minLength" or "maxLength" or "pattern" or "format": implied.Add("string"); break;
                case "minimum" or "maximum" or "exclusiveMinimum" or "exclusiveMaximum": implied.Add("number"); break;
            }
        }
        if (implied.Count == 0 || s.TryGetProperty("enum", out _) || s.TryGetProperty("const", out _)) return [.. AllTypes];
        return implied;
    }

    private Expr Enumerated(JsonElement s, JsonElement[] values, HashSet<string> types, string path, string keyword)
    {
        foreach (string k in Constraining(s))
            if (k is not ("enum" or "const" or "type"))
                throw Error(path, $"'{keyword}' together with '{k}' is not supported (list only values that satisfy it)");
        var alternatives = new List<Expr>();
        foreach (JsonElement v in values)
            if (types.Contains(TypeOf(v)) || (TypeOf(v) == "integer" && types.Contains("number"))) alternatives.Add(Expr.Lit(Canonical(v)));
        if (alternatives.Count == 0) throw Error(path, $"no '{keyword}' value has an allowed type");
        return Expr.Alt([.. alternatives]);
    }

    private static string TypeOf(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => v.TryGetDecimal(out decimal d) && d == decimal.Truncate(d) ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    /// <summary>A JSON value as this engine writes it (the form enum/const values are generated in).</summary>
    internal static string Canonical(JsonElement v)
    {
        var sb = new StringBuilder();
        Write(v, sb);
        return sb.ToString();
        static void Write(JsonElement v, StringBuilder sb)
        {
            switch (v.ValueKind)
            {
                case JsonValueKind.Object:
                    sb.Append('{');
                    bool first = true;
                    foreach (JsonProperty p in v.EnumerateObject())
                    {
                        if (!first) sb.Append(", ");
                        first = false;
                        sb.Append(Quote(p.Name)).Append(": ");
                        Write(p.Value, sb);
                    }
                    sb.Append('}');
                    break;
                case JsonValueKind.Array:
                    sb.Append('[');
                    int i = 0;
                    foreach (JsonElement e in v.EnumerateArray())
                    {
                        if (i++ > 0) sb.Append(", ");
                        Write(e, sb);
                    }
                    sb.Append(']');
                    break;
                case JsonValueKind.String: sb.Append(Quote(v.GetString()!)); break;
                default: sb.Append(v.GetRawText()); break;
            }
        }
    }

    /// <summary>A JSON string literal: quote, backslash and control characters escaped, everything else raw.</summary>
    internal static string Quote(string s)
    {
        var sb = new StringBuilder(s.Length + 2).Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    bool lone = char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]));
                    if (c < 0x20 || lone) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else if (char.IsHighSurrogate(c)) { sb.Append(c).Append(s[i + 1]); i++; }
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    // ---- objects ---------------------------------------------------------------------------------------------------

    private Expr ObjectSchema(JsonElement s, string path, int depth)
    {
        var names = new List<string>();
        var values = new List<Expr>();
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (s.TryGetProperty("required", out JsonElement req))
        {
            if (req.ValueKind != JsonValueKind.Array) throw Error(path, "'required' must be an array");
            foreach (JsonElement r in req.EnumerateArray())
            {
                if (r.ValueKind != JsonValueKind.String) throw Error(path, "'required' must list strings");
                required.Add(r.GetString()!);
            }
        }
        if (s.TryGetProperty("properties", out JsonElement props))
        {
            if (props.ValueKind != JsonValueKind.Object) throw Error(path, "'properties' must be an object");
            foreach (JsonProperty p in props.EnumerateObject())
            {
                names.Add(p.Name);
                values.Add(Schema(p.Value, $"{path}/properties/{p.Name}", depth + 1));
            }
        }
        bool closed = s.TryGetProperty("additionalProperties", out JsonElement ap) && ap.ValueKind == JsonValueKind.False;
        foreach (string r in required)
        {
            if (names.Contains(r)) continue;
            if (closed) throw Error(path, $"required property '{r}' is not in 'properties' and 'additionalProperties' is false, so no value is valid");
            names.Add(r); // required but not described: any value
            values.Add(Expr.Ref("value"));
        }

        Expr? extra = null; // one additional member, when the schema asks for them explicitly
        if (s.TryGetProperty("additionalProperties", out JsonElement additional) && additional.ValueKind != JsonValueKind.False)
        {
            bool explicitSchema = additional.ValueKind == JsonValueKind.Object;
            if (explicitSchema || names.Count == 0)
            {
                Expr key = Expr.Seq(Expr.Lit("\""), KeyExcluding(names), Expr.Lit("\""));
                extra = Expr.Seq(key, Expr.Lit(": "), Schema(additional, path + "/additionalProperties", depth + 1));
            }
            // additionalProperties: true beside 'properties': only the described properties are generated.
        }

        int n = names.Count;
        Expr Member(int i) => Expr.Seq(Expr.Lit(Quote(names[i]) + ": "), values[i]);
        Expr extras = extra is null ? Expr.Empty : Expr.Star(Expr.Seq(Expr.Lit(", "), extra));
        // After(i): members i.. when at least one member was written (each one preceded by ", ").
        var after = new Expr[n + 1];
        after[n] = extras;
        for (int i = n - 1; i >= 0; i--)
        {
            Expr m = Expr.Seq(Expr.Lit(", "), Member(i));
            after[i] = Expr.Seq(required.Contains(names[i]) ? m : Expr.Opt(m), after[i + 1]);
        }
        // First(i): members i.. when none was written yet.
        Expr first = extra is null ? Expr.Empty : Expr.Opt(Expr.Seq(extra, extras));
        for (int i = n - 1; i >= 0; i--)
        {
            Expr withThis = Expr.Seq(Member(i), after[i + 1]);
            first = required.Contains(names[i]) ? withThis : Expr.Alt(withThis, first);
        }
        string rule = "object" + _counter++;
        _def.Add(rule, Expr.Seq(Expr.Lit("{"), first, Expr.Lit("}")));
        return Expr.Ref(rule);
    }

    /// <summary>Key text (raw characters only, so that no escape can spell a described name) that is none of <paramref name="names"/>.</summary>
    private static Expr KeyExcluding(List<string> names)
    {
        (int, int)[] keyChars = CodeRanges.Subtract([(0, CodeRanges.MaxCodePoint)], [(0, 0x1F), ('"', '"'), ('\\', '\\')]);
        Expr anyKey = Expr.Star(new CharClassExpr(keyChars));
        if (names.Count == 0) return anyKey;
        return Build([.. names.Select(s => s.EnumerateRunes().Select(r => r.Value).ToArray())], 0);

        Expr Build(List<int[]> group, int at)
        {
            bool terminal = group.Any(g => g.Length == at);
            var alternatives = new List<Expr>();
            if (!terminal) alternatives.Add(Expr.Empty);
            var next = group.Where(g => g.Length > at).GroupBy(g => g[at]).ToList();
            foreach (var child in next)
                alternatives.Add(Expr.Seq(new CharClassExpr([(child.Key, child.Key)]), Build([.. child], at + 1)));
            (int, int)[] others = CodeRanges.Subtract(keyChars, [.. next.Select(c => (c.Key, c.Key))]);
            if (others.Length > 0) alternatives.Add(Expr.Seq(new CharClassExpr(others), anyKey));
            return Expr.Alt([.. alternatives]);
        }
    }

    // ---- arrays ----------------------------------------------------------------------------------------------------

    private Expr ArraySchema(JsonElement s, string path, int depth)
    {
        var prefix = new List<Expr>();
        if (s.TryGetProperty("prefixItems", out JsonElement pre))
        {
            if (pre.ValueKind != JsonValueKind.Array) throw Error(path, "'prefixItems' must be an array");
            int i = 0;
            foreach (JsonElement p in pre.EnumerateArray()) prefix.Add(Schema(p, $"{path}/prefixItems/{i++}", depth + 1));
        }
        Expr? item;
        if (s.TryGetProperty("items", out JsonElement items))
        {
            if (items.ValueKind == JsonValueKind.Array) throw Error(path, "'items' as an array (draft 2019 tuples) is not supported; use 'prefixItems'");
            item = items.ValueKind == JsonValueKind.False ? null : Schema(items, path + "/items", depth + 1);
        }
        else
        {
            item = prefix.Count > 0 ? null : Expr.Ref("value"); // after a prefix, only the prefix is generated
        }
        int min = Count(s, "minItems", path) ?? 0;
        int? maxGiven = Count(s, "maxItems", path);
        int k = prefix.Count;
        long max = item is null ? k : (maxGiven ?? long.MaxValue);
        if (maxGiven is int mg) max = Math.Min(max, mg);
        if (min > max) throw Error(path, $"'minItems' {min} cannot be met (at most {max} items are allowed)");
        if (max != long.MaxValue && max - k > MaxRepeat) throw Error(path, $"'maxItems' above {MaxRepeat} is not supported");

        Expr body;
        int lo = Math.Max(0, min - k);
        int hi = max == long.MaxValue ? -1 : (int)(max - k);
        if (k == 0)
        {
            if (hi == 0) body = Expr.Empty;
            else
            {
                Expr rest = Expr.Repeat(Expr.Seq(Expr.Lit(", "), item!), Math.Max(0, lo - 1), hi < 0 ? -1 : hi - 1);
                body = lo == 0 ? Expr.Opt(Expr.Seq(item!, rest)) : Expr.Seq(item!, rest);
            }
        }
        else
        {
            Expr tail = hi == 0 || item is null ? Expr.Empty : Expr.Repeat(Expr.Seq(Expr.Lit(", "), item), lo, hi);
            for (int i = k - 1; i >= 0; i--)
            {
                Expr element = Expr.Seq(i > 0 ? Expr.Lit(", ") : Expr.Empty, prefix[i], tail);
                tail = i < min ? element : Expr.Opt(element);
            }
            body = tail;
        }
        string rule = "array" + _counter++;
        _def.Add(rule, Expr.Seq(Expr.Lit("["), body, Expr.Lit("]")));
        return Expr.Ref(rule);
    }

    private static int? Count(JsonElement s, string keyword, string path)
    {
        if (!s.TryGetProperty(keyword, out JsonElement v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out decimal d) || d < 0 || d != decimal.Truncate(d))
            throw Error(path, $"'{keyword}' must be a non-negative integer");
        return d > int.MaxValue ? int.MaxValue : (int)d;
    }

    // ---- strings ---------------------------------------------------------------------------------------------------

    private Expr StringSchema(JsonElement s, string path)
    {
        int? minLength = Count(s, "minLength", path), maxLength = Count(s, "maxLength", path);
        bool hasPattern = s.TryGetProperty("pattern", out JsonElement pattern);
        bool hasFormat = s.TryGetProperty("format", out JsonElement format);
        if (hasFormat && (hasPattern || minLength is not null || maxLength is not null))
            throw Error(path, "'format' together with 'pattern', 'minLength' or 'maxLength' is not supported");
        if (hasPattern && (minLength is not null || maxLength is not null))
            throw Error(path, "'pattern' together with 'minLength' or 'maxLength' is not supported");
        if (hasFormat)
        {
            if (format.ValueKind != JsonValueKind.String) throw Error(path, "'format' must be a string");
            return Expr.Seq(Expr.Lit("\""), Format(format.GetString()!, path), Expr.Lit("\""));
        }
        if (hasPattern)
        {
            if (pattern.ValueKind != JsonValueKind.String) throw Error(path, "'pattern' must be a string");
            Expr body;
            try
            {
                body = RegexParser.Parse(pattern.GetString()!, RegexParser.Mode.JsonStringSearch);
            }
            catch (GemmaException e)
            {
                throw Error(path, "'pattern': " + e.Message);
            }
            return Expr.Seq(Expr.Lit("\""), body, Expr.Lit("\""));
        }
        if (minLength is null && maxLength is null) return Expr.Ref("string");
        int min = minLength ?? 0;
        int max = maxLength ?? -1;
        if (max >= 0 && min > max) throw Error(path, $"'minLength' {min} is greater than 'maxLength' {max}");
        if (min > MaxRepeat || max > MaxRepeat) throw Error(path, $"'minLength'/'maxLength' above {MaxRepeat} is not supported");
        string rule = "string" + _counter++;
        _def.Add(rule, Expr.Seq(Expr.Lit("\""), Expr.Repeat(JsonChar(), min, max), Expr.Lit("\"")));
        return Expr.Ref(rule);
    }

    private static Expr Format(string format, string path)
    {
        Expr D(int n) => Expr.Repeat(Digit(), n, n);
        Expr R(char lo, char hi) => Expr.Chars((lo, hi));
        // Days that exist in every year: February stops at 28 (a sound restriction that needs no leap-year logic).
        Expr date = Expr.Seq(D(4), Expr.Lit("-"), Expr.Alt(
            Expr.Seq(Expr.Alt(Expr.Lit("01"), Expr.Lit("03"), Expr.Lit("05"), Expr.Lit("07"), Expr.Lit("08"), Expr.Lit("10"), Expr.Lit("12")),
                Expr.Lit("-"), Expr.Alt(Expr.Seq(Expr.Lit("0"), R('1', '9')), Expr.Seq(R('1', '2'), Digit()), Expr.Seq(Expr.Lit("3"), R('0', '1')))),
            Expr.Seq(Expr.Alt(Expr.Lit("04"), Expr.Lit("06"), Expr.Lit("09"), Expr.Lit("11")),
                Expr.Lit("-"), Expr.Alt(Expr.Seq(Expr.Lit("0"), R('1', '9')), Expr.Seq(R('1', '2'), Digit()), Expr.Lit("30"))),
            Expr.Seq(Expr.Lit("02"), Expr.Lit("-"), Expr.Alt(Expr.Seq(Expr.Lit("0"), R('1', '9')), Expr.Seq(Expr.Lit("1"), Digit()), Expr.Seq(Expr.Lit("2"), R('0', '8'))))));
        Expr hour = Expr.Alt(Expr.Seq(R('0', '1'), Digit()), Expr.Seq(Expr.Lit("2"), R('0', '3')));
        Expr minute = Expr.Seq(R('0', '5'), Digit());
        Expr time = Expr.Seq(hour, Expr.Lit(":"), minute, Expr.Lit(":"), minute, Expr.Opt(Expr.Seq(Expr.Lit("."), Expr.Repeat(Digit(), 1, 6))),
            Expr.Alt(Expr.Lit("Z"), Expr.Seq(Expr.Chars("+-"), hour, Expr.Lit(":"), minute)));
        Expr H(int n) => Expr.Repeat(Expr.Chars(('0', '9'), ('a', 'f')), n, n);
        Expr alnum = Expr.Chars(('a', 'z'), ('A', 'Z'), ('0', '9'));
        Expr label = Expr.Seq(alnum, Expr.Repeat(Expr.Seq(Expr.Opt(Expr.Lit("-")), alnum), 0, 30));
        return format switch
        {
            "date" => date,
            "time" => time,
            "date-time" => Expr.Seq(date, Expr.Lit("T"), time),
            "uuid" => Expr.Seq(H(8), Expr.Lit("-"), H(4), Expr.Lit("-"), H(4), Expr.Lit("-"), H(4), Expr.Lit("-"), H(12)),
            "email" => Expr.Seq(
                Expr.Repeat(alnum, 1, 32), Expr.Repeat(Expr.Seq(Expr.Chars("._+-"), Expr.Repeat(alnum, 1, 32)), 0, 4),
                Expr.Lit("@"), label, Expr.Repeat(Expr.Seq(Expr.Lit("."), label), 0, 3),
                Expr.Lit("."), Expr.Repeat(Expr.Chars(('a', 'z')), 2, 10)),
            _ => throw Error(path, $"'format': \"{format}\" is not supported (supported: date, time, date-time, uuid, email)"),
        };
    }

    // ---- numbers ---------------------------------------------------------------------------------------------------

    private static bool HasNumberBounds(JsonElement s) =>
        s.TryGetProperty("minimum", out _) || s.TryGetProperty("maximum", out _)
        || s.TryGetProperty("exclusiveMinimum", out _) || s.TryGetProperty("exclusiveMaximum", out _);

    /// <summary>Bounds are clamped to ±1e15 (inward, so still sound) and handled exactly below that.</summary>
    private const double Limit = 1e15;

    private Expr NumberSchema(JsonElement s, string path, bool integer)
    {
        if (!HasNumberBounds(s)) return Expr.Ref(integer ? "integer" : "number");
        (double lo, bool loExclusive) = Bound(s, "minimum", "exclusiveMinimum", path, lower: true);
        (double hi, bool hiExclusive) = Bound(s, "maximum", "exclusiveMaximum", path, lower: false);
        lo = Math.Max(lo, -Limit);
        hi = Math.Min(hi, Limit);
        // Integer values n with lo <= n <= hi (or strict).
        long intLo = (long)(loExclusive ? Math.Floor(lo) + 1 : Math.Ceiling(lo));
        long intHi = (long)(hiExclusive ? Math.Ceiling(hi) - 1 : Math.Floor(hi));
        var alternatives = new List<Expr>();
        if (intLo <= intHi) alternatives.Add(SignedRange(intLo, intHi));
        if (!integer)
        {
            // n.f with 0 < f < 1 (the fraction never ends in 0): lies strictly between n and n + 1.
            Expr fraction = Expr.Seq(Expr.Lit("."), Expr.Repeat(Digit(), 0, 5), Expr.Chars(('1', '9')));
            long posLo = Math.Max(0, (long)Math.Ceiling(lo)), posHi = (long)Math.Floor(hi) - 1;
            if (posLo <= posHi) alternatives.Add(Expr.Seq(UnsignedRange(posLo, posHi), fraction));
            // -(m.f) lies strictly between -(m + 1) and -m.
            long negLo = Math.Max(0, (long)Math.Ceiling(-hi)), negHi = (long)Math.Floor(-lo) - 1;
            if (negLo <= negHi) alternatives.Add(Expr.Seq(Expr.Lit("-"), UnsignedRange(negLo, negHi), fraction));
        }
        if (alternatives.Count == 0) throw Error(path, "no value satisfies 'minimum'/'maximum' in the supported subset (see docs/structured-output.md)");
        return Expr.Alt([.. alternatives]);
    }

    private static (double Value, bool Exclusive) Bound(JsonElement s, string inclusive, string exclusive, string path, bool lower)
    {
        double value = lower ? double.NegativeInfinity : double.PositiveInfinity;
        bool strict = false;
        if (s.TryGetProperty(inclusive, out JsonElement v))
        {
            if (v.ValueKind != JsonValueKind.Number) throw Error(path, $"'{inclusive}' must be a number");
            value = v.GetDouble();
        }
        if (s.TryGetProperty(exclusive, out JsonElement e))
        {
            if (e.ValueKind is JsonValueKind.True or JsonValueKind.False) strict = e.ValueKind == JsonValueKind.True; // draft 4
            else if (e.ValueKind == JsonValueKind.Number)
            {
                double x = e.GetDouble();
                if (lower ? x >= value : x <= value) { value = x; strict = true; }
            }
            else throw Error(path, $"'{exclusive}' must be a number");
        }
        return (value, strict);
    }

    private static Expr SignedRange(long lo, long hi)
    {
        var alternatives = new List<Expr>();
        if (lo < 0) alternatives.Add(Expr.Seq(Expr.Lit("-"), UnsignedRange(Math.Max(1, -Math.Min(hi, -1)), -lo)));
        if (hi >= 0) alternatives.Add(UnsignedRange(Math.Max(lo, 0), hi));
        return Expr.Alt([.. alternatives]);
    }

    /// <summary>Decimal numerals (no leading zeros) of the integers in [lo, hi], 0 ≤ lo ≤ hi.</summary>
    internal static Expr UnsignedRange(long lo, long hi)
    {
        var alternatives = new List<Expr>();
        int loDigits = lo.ToString(CultureInfo.InvariantCulture).Length, hiDigits = hi.ToString(CultureInfo.InvariantCulture).Length;
        for (int len = loDigits; len <= hiDigits; len++)
        {
            long from = len == loDigits ? lo : Pow10(len - 1);
            long to = len == hiDigits ? hi : Pow10(len) - 1;
            alternatives.Add(SameLength(from.ToString(CultureInfo.InvariantCulture), to.ToString(CultureInfo.InvariantCulture)));
        }
        return Expr.Alt([.. alternatives]);
    }

    private static long Pow10(int n)
    {
        long r = 1;
        for (int i = 0; i < n; i++) r *= 10;
        return r;
    }

    private static Expr SameLength(string lo, string hi)
    {
        if (lo.Length == 1) return Expr.Chars((lo[0], hi[0]));
        if (lo[0] == hi[0]) return Expr.Seq(Expr.Lit(lo[..1]), SameLength(lo[1..], hi[1..]));
        string nines = new('9', lo.Length - 1), zeros = new('0', lo.Length - 1);
        if (lo[1..] == zeros && hi[1..] == nines) return Expr.Seq(Expr.Chars((lo[0], hi[0])), Expr.Repeat(Digit(), lo.Length - 1, lo.Length - 1));
        var alternatives = new List<Expr> { Expr.Seq(Expr.Lit(lo[..1]), SameLength(lo[1..], nines)) };
        if (lo[0] + 1 <= hi[0] - 1) alternatives.Add(Expr.Seq(Expr.Chars(((char)(lo[0] + 1), (char)(hi[0] - 1))), Expr.Repeat(Digit(), lo.Length - 1, lo.Length - 1)));
        alternatives.Add(Expr.Seq(Expr.Lit(hi[..1]), SameLength(zeros, hi[1..])));
        return Expr.Alt([.. alternatives]);
    }

    private static JsonElement ToElement(JsonObject o)
    {
        using JsonDocument doc = JsonDocument.Parse(o.ToJsonString(), new JsonDocumentOptions { MaxDepth = 4096 });
        return doc.RootElement.Clone();
    }

    // ---- allOf -----------------------------------------------------------------------------------------------------

    /// <summary>
    /// Merges <c>allOf</c> (and a <c>$ref</c> with sibling keywords) into one schema: properties are merged (a property
    /// in several parts gets an allOf of its schemas), <c>required</c> lists are joined, <c>type</c>s intersected; any
    /// other keyword must agree across the parts, else it is an error.
    /// </summary>
    private JsonElement MergeAllOf(JsonElement s, string path)
    {
        var merged = new JsonObject();
        var parts = new List<JsonElement> { s };
        for (int i = 0; i < parts.Count; i++)
        {
            JsonElement part = parts[i];
            if (part.ValueKind == JsonValueKind.True) continue;
            if (part.ValueKind != JsonValueKind.Object) throw Error(path, "'allOf' parts must be schemas (objects)");
            if (parts.Count > 64) throw Error(path, "'allOf' nests too many parts");
            foreach (JsonProperty p in part.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "allOf":
                        if (p.Value.ValueKind != JsonValueKind.Array) throw Error(path, "'allOf' must be an array");
                        parts.AddRange(p.Value.EnumerateArray());
                        break;
                    case "$ref":
                        if (p.Value.ValueKind != JsonValueKind.String) throw Error(path, "'$ref' must be a string");
                        parts.Add(Resolve(p.Value.GetString()!, path));
                        break;
                    case "properties" when p.Value.ValueKind != JsonValueKind.Object:
                        throw Error(path, "'properties' must be an object");
                    case "required" when p.Value.ValueKind != JsonValueKind.Array || p.Value.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String):
                        throw Error(path, "'required' must be an array of strings");
                    case "type":
                        Types(part, path); // validates
                        goto case "type!";
                    case "properties":
                        var props = merged["properties"] as JsonObject ?? new JsonObject();
                        merged["properties"] = props;
                        foreach (JsonProperty q in p.Value.EnumerateObject())
                        {
                            JsonNode? node = JsonNode.Parse(q.Value.GetRawText());
                            props[q.Name] = props[q.Name] is { } existing ? new JsonObject { ["allOf"] = new JsonArray(existing.DeepClone(), node) } : node;
                        }
                        break;
                    case "required":
                        var req = merged["required"] as JsonArray ?? new JsonArray();
                        merged["required"] = req;
                        foreach (JsonElement r in p.Value.EnumerateArray())
                            if (!req.Any(x => x?.GetValue<string>() == r.GetString())) req.Add((JsonNode?)JsonValue.Create(r.GetString()));
                        break;
                    case "type!":
                        string[] types = p.Value.ValueKind == JsonValueKind.Array ? [.. p.Value.EnumerateArray().Select(x => x.GetString() ?? "")] : [p.Value.GetString() ?? ""];
                        if (merged["type"] is JsonArray have)
                        {
                            var keep = have.Select(x => x!.GetValue<string>()).Where(t => types.Contains(t) || (t == "integer" && types.Contains("number"))).ToList();
                            if (keep.Count == 0) throw Error(path, "'allOf' parts have no 'type' in common");
                            merged["type"] = new JsonArray([.. keep.Select(t => (JsonNode)JsonValue.Create(t))]);
                        }
                        else merged["type"] = new JsonArray([.. types.Select(t => (JsonNode)JsonValue.Create(t))]);
                        break;
                    default:
                        if (Annotations.Contains(p.Name)) break;
                        JsonNode? value = JsonNode.Parse(p.Value.GetRawText());
                        if (merged.TryGetPropertyValue(p.Name, out JsonNode? old) && !JsonNode.DeepEquals(old, value))
                            throw Error(path, $"'allOf' parts disagree on '{p.Name}' (merging different values is not supported)");
                        merged[p.Name] = value;
                        break;
                }
            }
        }
        // additionalProperties sees only its own part's properties: a part that restricts them must know them all.
        if (merged["properties"] is JsonObject all)
        {
            foreach (JsonElement part in parts)
            {
                if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("additionalProperties", out JsonElement ap) || ap.ValueKind == JsonValueKind.True)
                    continue;
                var own = part.TryGetProperty("properties", out JsonElement p) && p.ValueKind == JsonValueKind.Object
                    ? p.EnumerateObject().Select(x => x.Name).ToHashSet(StringComparer.Ordinal) : [];
                string? foreign = all.Select(kv => kv.Key).FirstOrDefault(k => !own.Contains(k));
                if (foreign is not null)
                    throw Error(path, $"'allOf': property '{foreign}' is declared in one part but another part's 'additionalProperties' rejects it");
            }
        }
        return ToElement(merged);
    }
}
