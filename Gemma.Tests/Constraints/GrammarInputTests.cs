using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gemma.Core;
using Gemma.Core.Constraints;
using Gemma.Tests.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Constraints;

/// <summary>GBNF and regex inputs, bad inputs with clear errors, and pathological grammars kept bounded.</summary>
[TestFixture]
public class GrammarInputTests
{
    private static bool Accepts(OutputConstraint c, string text)
    {
        var m = c.CreateMatcher(TokenizerFixtures.Demo);
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            int token = m.Vocabulary.ByteToken[b];
            Assert.That(token, Is.GreaterThanOrEqualTo(0), $"byte {b:X2} has no token");
            if (!m.TryAdvance(token)) return false;
        }
        return m.CanEnd;
    }

    [TestCase("root ::= \"yes\" | \"no\"", "yes", true)]
    [TestCase("root ::= \"yes\" | \"no\"", "maybe", false)]
    [TestCase("root ::= [a-c]+ \"!\"?", "abcab!", true)]
    [TestCase("root ::= [^x]{2,3}", "ab", true)]
    [TestCase("root ::= [^x]{2,3}", "abcd", false)]
    [TestCase("root ::= item (\",\" item)*\nitem ::= [0-9]+ # digits\n", "1,22,333", true)]
    [TestCase("root ::= (\n  \"a\"\n  | \"b\"\n)+", "abba", true)]
    [TestCase("root ::= \"\\x41\\u00e9\\n\"", "Aé\n", true)]
    [TestCase("root ::= \"日本\" [ぁ-ん]*", "日本ごはん", true)]
    [TestCase("root ::= \"日本\" [ぁ-ん]*", "日本語", false)]
    [TestCase("root ::=\n  \"a\" |\n  \"b\"\n", "b", true)]
    [TestCase("root ::= . .", "éx", true)]
    public void Gbnf_AcceptsExactlyItsLanguage(string grammar, string text, bool expected) =>
        Assert.That(Accepts(OutputConstraint.FromGbnf(grammar), text), Is.EqualTo(expected));

    [Test]
    public void Gbnf_LlamaCppJsonGrammar_ProducesJson()
    {
        // llama.cpp's grammars/json.gbnf (abridged only in comments).
        const string grammar = """
            root   ::= object
            value  ::= object | array | string | number | ("true" | "false" | "null") ws

            object ::=
              "{" ws (
                        string ":" ws value
                ("," ws string ":" ws value)*
              )? "}" ws

            array  ::=
              "[" ws (
                        value
                ("," ws value)*
              )? "]" ws

            string ::=
              "\"" (
                [^"\\\x7F\x00-\x1F] |
                "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
              )* "\"" ws

            number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

            # Optional space: by convention, applied in this grammar after literal chars when allowed
            ws ::= | " " | "\n" [ \t]{0,20}
            """;
        var c = OutputConstraint.FromGbnf(grammar);
        for (int seed = 0; seed < 8; seed++)
        {
            var r = ConstraintHarness.Run(c, TokenizerFixtures.Demo, seed, 64);
            Assert.That(r.Finished, Is.True, r.Text);
            using var doc = JsonDocument.Parse(r.Text);
            Assert.That(doc.RootElement.ValueKind, Is.EqualTo(JsonValueKind.Object));
        }
    }

    [TestCase(@"[A-Z]{2}-\d{3}", "AB-123", true)]
    [TestCase(@"[A-Z]{2}-\d{3}", "AB-12", false)]
    [TestCase(@"(cat|dog)s?", "dogs", true)]
    [TestCase(@"^a.c$", "abc", true)]
    [TestCase(@"a.c", "a\nc", false)]
    [TestCase(@"\w+@\w+\.com", "me@x.com", true)]
    [TestCase(@"[^\d\s]+", "abc", true)]
    [TestCase(@"[^\d\s]+", "a1", false)]
    [TestCase(@"(?:ab){2,}?", "ababab", true)]
    [TestCase(@"\u00e9\x41", "éA", true)]
    public void Regex_AcceptsExactlyItsLanguage(string pattern, string text, bool expected)
    {
        Assert.That(Accepts(OutputConstraint.FromRegex(pattern), text), Is.EqualTo(expected));
        Assert.That(Regex.IsMatch(text, "^(?:" + pattern.TrimStart('^').TrimEnd('$') + ")$"), Is.EqualTo(expected), "the test's own expectation");
    }

    [Test]
    public void Regex_RandomWalks_MatchTheDotNetRegex()
    {
        const string pattern = @"[a-z]{1,8}(-[0-9]{2,4})*\.(json|txt)";
        var c = OutputConstraint.FromRegex(pattern);
        for (int seed = 0; seed < 20; seed++)
        {
            var r = ConstraintHarness.Run(c, TokenizerFixtures.Full, seed, 40);
            Assert.That(r.Finished, Is.True, r.Text);
            Assert.That(Regex.IsMatch(r.Text, "^(?:" + pattern + ")$"), r.Text);
        }
    }

    [TestCase("root ::= foo", "undefined rule 'foo'")]
    [TestCase("root ::= \"abc", "unterminated string")]
    [TestCase("root ::= [a-", "character class")]
    [TestCase("rot ::= \"a\"", "no 'root' rule")]
    [TestCase("root ::= root \"a\" | \"b\"", "left recursion")]
    [TestCase("root ::= a\na ::= \"x\" a", "can never be completed")]
    [TestCase("root ::= \"a\"{3,1}", "maximum below minimum")]
    [TestCase("root ::= <[1000]>", "token references")]
    [TestCase("root ::= \"a\" )", "expected a newline")]
    [TestCase("root = \"a\"", "expected '::='")]
    [TestCase("root ::= \"a\"\nroot ::= \"b\"", "defined twice")]
    [TestCase("root ::= \"\\q\"", "unknown escape")]
    public void Gbnf_BadGrammar_ClearError(string grammar, string message)
    {
        var e = Assert.Throws<GemmaException>(() => OutputConstraint.FromGbnf(grammar));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [TestCase(@"(a", "missing ')'")]
    [TestCase(@"a)", "unexpected ')'")]
    [TestCase(@"(?=a)", "lookaround")]
    [TestCase(@"(a)\1", "backreferences")]
    [TestCase(@"\bword", "word boundaries")]
    [TestCase(@"\p{L}", "Unicode property")]
    [TestCase(@"a{5,2}", "minimum above maximum")]
    [TestCase(@"*a", "nothing to repeat")]
    [TestCase(@"a{99999}", "above 1000")]
    public void Regex_Bad_ClearError(string pattern, string message)
    {
        var e = Assert.Throws<GemmaException>(() => OutputConstraint.FromRegex(pattern));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [TestCase("not json", "not valid JSON")]
    [TestCase("""{"type":"string","contentEncoding":"base64"}""", "'contentEncoding'")]
    [TestCase("""{"not":{"type":"string"}}""", "'not'")]
    [TestCase("""{"type":"object","patternProperties":{"^a":{}}}""", "'patternProperties'")]
    [TestCase("""{"type":"array","uniqueItems":true}""", "'uniqueItems'")]
    [TestCase("""{"if":{},"then":{}}""", "'if'")]
    [TestCase("""{"type":"number","multipleOf":3}""", "'multipleOf'")]
    [TestCase("""{"type":"object","minProperties":1}""", "'minProperties'")]
    [TestCase("""{"type":"string","format":"uri"}""", "\"uri\" is not supported")]
    [TestCase("""{"type":"strin"}""", "not a JSON Schema type")]
    [TestCase("""{"$ref":"http://example.com/s.json"}""", "only references inside the schema")]
    [TestCase("""{"$ref":"#/$defs/missing"}""", "does not resolve")]
    [TestCase("""{"type":"array","minItems":3,"maxItems":2}""", "cannot be met")]
    [TestCase("""{"type":"string","minLength":3,"maxLength":2}""", "greater than")]
    [TestCase("""{"oneOf":[{"type":"string"},{"type":"string","maxLength":2}]}""", "may both match")]
    [TestCase("""{"allOf":[{"type":"string"},{"type":"integer"}]}""", "no 'type' in common")]
    [TestCase("""{"allOf":[{"maxLength":2},{"maxLength":3}]}""", "disagree on 'maxLength'")]
    [TestCase("""{"type":"integer","minimum":5,"maximum":4}""", "no value satisfies")]
    [TestCase("""{"$ref":"#"}""", "can never be completed")]
    [TestCase("""{"enum":[1,2],"maxLength":3}""", "together with 'maxLength'")]
    [TestCase("""{"type":"string","pattern":"(?<=a)b"}""", "'pattern'")]
    [TestCase("false", "allows no value")]
    [TestCase("""{"type":"object","required":["x"],"additionalProperties":false}""", "required property 'x'")]
    public void JsonSchema_Unsupported_ClearErrorNamingTheKeyword(string schema, string message)
    {
        var e = Assert.Throws<GemmaException>(() => OutputConstraint.FromJsonSchema(schema));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void Pathological_ManyOptionals_BoundedAndCorrect()
    {
        string grammar = "root ::= " + string.Join(" ", Enumerable.Repeat("\"x\"?", 50)) + " \"y\"";
        var sw = Stopwatch.StartNew();
        var c = OutputConstraint.FromGbnf(grammar);
        Assert.That(Accepts(c, new string('x', 50) + "y"), Is.True);
        Assert.That(Accepts(c, new string('x', 51) + "y"), Is.False);
        Assert.That(Accepts(c, "y"), Is.True);
        var r = ConstraintHarness.Run(c, TokenizerFixtures.Full, 1, 60);
        Assert.That(r.Finished, Is.True);
        Assert.That(r.Text, Does.Match("^x{0,50}y$"));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromMinutes(1)), "a hang guard, not a performance assertion");
    }

    [Test]
    public void Pathological_AmbiguousGrammar_ClearErrorInsteadOfBlowup()
    {
        // Exponentially many parses of "xxxx…": the stack set is capped and reported.
        var c = OutputConstraint.FromGbnf("root ::= s\ns ::= a s \"1\" | b s \"2\" | \"z\"\na ::= \"x\"\nb ::= \"x\"");
        var m = c.CreateMatcher(TokenizerFixtures.Demo);
        int x = m.Vocabulary.ByteToken['x'];
        var e = Assert.Throws<GemmaException>(() => { for (int i = 0; i < 64; i++) m.TryAdvance(x); });
        Assert.That(e!.Message, Does.Contain("too ambiguous"));
    }

    [Test]
    public void Pathological_Nesting1000_SchemaAndGrammarAndOutput()
    {
        string schema = string.Concat(Enumerable.Repeat("""{"type":"object","properties":{"a":""", 1000)) + "{\"type\":\"integer\"}" + string.Concat(Enumerable.Repeat("},\"required\":[\"a\"],\"additionalProperties\":false}", 1000));
        var c = OutputConstraint.FromJsonSchema(schema);
        string expected = string.Concat(Enumerable.Repeat("{\"a\": ", 1000)) + "7" + new string('}', 1000);
        Assert.That(Accepts(c, expected), Is.True);

        string gbnf = "root ::= " + new string('(', 400) + "\"a\"" + new string(')', 400);
        Assert.That(Accepts(OutputConstraint.FromGbnf(gbnf), "a"), Is.True);

        // Any JSON nested 20000 deep at run time: the stack is a linked list in an arena, not the call stack.
        var any = OutputConstraint.AnyJson();
        Assert.That(Accepts(any, new string('[', 20000) + new string(']', 20000)), Is.True);
    }

    [Test]
    public void AnyJson_EndOnlyWhenComplete()
    {
        var m = OutputConstraint.AnyJson().CreateMatcher(TokenizerFixtures.Demo);
        Assert.That(m.CanEnd, Is.False);
        foreach (char ch in "{\"a\": 1") Assert.That(m.TryAdvance(m.Vocabulary.ByteToken[ch]), Is.True);
        Assert.That(m.CanEnd, Is.False);
        Assert.That(m.TryAdvance(m.Vocabulary.ByteToken['}']), Is.True);
        Assert.That(m.CanEnd, Is.True);
        Assert.That(m.IsFinished, Is.True);
        Assert.That(m.TryAdvance(m.Vocabulary.ByteToken[' ']), Is.False);
    }

    [Test]
    public void Fuzz_RandomSchemas_NeverCrash()
    {
        // Random schema-shaped JSON: compile either succeeds (then random walks validate) or throws GemmaException.
        var rng = new Random(12);
        string[] keys = ["type", "properties", "required", "items", "prefixItems", "enum", "const", "anyOf", "oneOf", "allOf",
            "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems", "pattern", "format",
            "additionalProperties", "$ref", "$defs", "not", "description"];
        string[] types = ["\"string\"", "\"integer\"", "\"number\"", "\"boolean\"", "\"null\"", "\"object\"", "\"array\"", "[\"string\",\"null\"]", "\"bogus\""];
        string Value(int depth) => rng.Next(6) switch
        {
            0 => rng.Next(-5, 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            1 => types[rng.Next(types.Length)],
            2 => "[" + string.Join(",", Enumerable.Range(0, rng.Next(3)).Select(_ => depth < 3 ? Schema(depth + 1) : "1")) + "]",
            3 => rng.Next(2) == 0 ? "true" : "false",
            4 => "\"" + (rng.Next(3) switch { 0 => "#", 1 => "^a+$", _ => "date" }) + "\"",
            _ => depth < 3 ? Schema(depth + 1) : "{}",
        };
        string Schema(int depth) => "{" + string.Join(",", Enumerable.Range(0, rng.Next(4)).Select(_ =>
        {
            string k = keys[rng.Next(keys.Length)];
            return k == "properties" || k == "$defs"
                ? $"\"{k}\":{{\"p\":{(depth < 3 ? Schema(depth + 1) : "{}")},\"q\":{{}}}}"
                : $"\"{k}\":{Value(depth)}";
        }).Distinct()) + "}";
        int compiled = 0;
        for (int i = 0; i < 300; i++)
        {
            string s = Schema(0);
            OutputConstraint c;
            try
            {
                c = OutputConstraint.FromJsonSchema(s);
            }
            catch (GemmaException)
            {
                continue;
            }
            compiled++;
            try
            {
                Json.Schema.JsonSchema.FromText(s);
            }
            catch (Json.Schema.JsonSchemaException)
            {
                continue; // the validator rejects the schema itself (e.g. in an unused $defs entry): nothing to check
            }
            var r = ConstraintHarness.Run(c, TokenizerFixtures.Demo, i, 40);
            if (r.Finished) JsonSchemaConstraintTests.AssertValid(s, r.Text);
        }
        Assert.That(compiled, Is.GreaterThan(20));
    }
}
