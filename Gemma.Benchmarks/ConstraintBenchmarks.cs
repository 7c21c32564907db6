using System.Diagnostics;
using System.Runtime.InteropServices;
using Gemma.Kernels;
using BenchmarkDotNet.Attributes;
using Gemma.Core.Constraints;
using Gemma.Core.Tokenization;

namespace Gemma.Benchmarks;

/// <summary>
/// Constrained generation at the real 256k Gemma 2 vocabulary: token-mask time in typical parser states (warm: the
/// per-state token sets already learned, the steady state of a generation) and schema compile time.
/// <c>dotnet run -c Release --project Gemma.Benchmarks -- --filter '*ConstraintBenchmarks*'</c>; the distribution over
/// whole generations (cold and warm, mean/p50/p99/max) comes from the <c>constraint-trace</c> mode.
/// </summary>
[MemoryDiagnoser]
public class ConstraintBenchmarks
{
    internal const string PersonSchema = """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},"email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["street","city"],"additionalProperties":false}},"required":["name","age","tags"],"additionalProperties":false}""";

    private GemmaTokenizer _tokenizer = null!;
    private GrammarMatcher _matcher = null!;
    private ulong[] _mask = [];

    /// <summary>The parser state: the prefix already generated under the Person schema (or any JSON for "any:").</summary>
    [Params("{", "{\"name\": \"Tar", "{\"name\": \"a\", \"age\": 4", "{\"name\": \"a\", \"age\": 1, \"tags\": [\"x\", \"y", "any:[{\"k\": [1, \"ab")]
    public string State { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerBenchmarks.TokenizerPath);
        bool any = State.StartsWith("any:", StringComparison.Ordinal);
        OutputConstraint c = any ? OutputConstraint.AnyJson() : OutputConstraint.FromJsonSchema(PersonSchema);
        _matcher = c.CreateMatcher(_tokenizer);
        foreach (int id in _tokenizer.EncodeToIds(any ? State[4..] : State, addBos: false, parseControlTokens: false))
            if (!_matcher.TryAdvance(id)) throw new InvalidOperationException($"prefix '{State}' rejected");
        _mask = new ulong[(_tokenizer.VocabularySize + 63) / 64];
        _matcher.FillMask(_mask); // learn this state's token sets once (the cold cost is reported by constraint-trace)
    }

    [Benchmark]
    public void Mask() => _matcher.FillMask(_mask);
}

/// <summary>Schema compile time (no vocabulary work: that is learned lazily per state, see constraint-trace).</summary>
[MemoryDiagnoser]
public class ConstraintCompileBenchmarks
{
    [Benchmark]
    public OutputConstraint PersonSchema() => OutputConstraint.FromJsonSchema(ConstraintBenchmarks.PersonSchema);

    [Benchmark]
    public OutputConstraint AnyJson() => OutputConstraint.AnyJson();

    [Benchmark]
    public OutputConstraint LlamaCppJsonGbnf() => OutputConstraint.FromGbnf(ConstraintTrace.JsonGbnf);
}

/// <summary>
/// A constraint used for the first time: compile it, then run <see cref="Generations"/> random-logit generations
/// (as <c>constraint-trace</c> does) with every parser state met learning its token sets — the whole cold cost a new
/// schema pays, at the 256k vocabulary. Divide by the masks per operation (printed by <c>constraint-trace</c>) for a
/// per-mask mean that includes first use.
/// </summary>
[MemoryDiagnoser]
public class ConstraintColdGenerationBenchmarks
{
    private const int Generations = 5;
    private GemmaTokenizer _tokenizer = null!;

    [Params("person", "any JSON", "json.gbnf", "regex", "orders", "shape", "formats", "unicode", "patterns")]
    public string Constraint { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerBenchmarks.TokenizerPath);
        TokenVocabulary.For(_tokenizer);
    }

    [Benchmark]
    public int CompileAndGenerateCold()
    {
        OutputConstraint c = ConstraintTrace.Create(Constraint);
        int masks = 0;
        for (int g = 0; g < Generations; g++) masks += ConstraintTrace.Generate(c, _tokenizer, g, null, null);
        return masks;
    }
}

/// <summary>
/// <c>constraint-trace</c>: replays constrained generations with random logits at the 256k vocabulary and times every
/// mask — the first generation (cold: each new parser state learns its token sets) and the following ones (warm) —
/// plus compile times, best of N. Prints mean, p50, p99 and max per schema.
/// </summary>
internal static class ConstraintTrace
{
    internal const string JsonGbnf = """
        root   ::= object
        value  ::= object | array | string | number | ("true" | "false" | "null") ws
        object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
        array  ::= "[" ws ( value ("," ws value)* )? "]" ws
        string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
        number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
        ws ::= | " " | "\n" [ \t]{0,20}
        """;

    /// <summary>Schemas the engine's authors did not tune for: nested arrays of objects, anyOf of objects, patterns,
    /// formats, unicode enums, a maxLength string.</summary>
    internal static readonly (string Name, string Schema)[] MoreSchemas =
    [
        ("orders (nested arrays of objects, pattern)", """{"type":"object","properties":{"orders":{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer"},"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"},"qty":{"type":"integer","minimum":1,"maximum":99}},"required":["sku","qty"]},"maxItems":3}},"required":["id","lines"]},"maxItems":3}},"required":["orders"]}"""),
        ("shape (anyOf of objects)", """{"anyOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","minimum":0}},"required":["kind","r"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"number"},"h":{"type":"number"}},"required":["kind","w","h"],"additionalProperties":false}]}"""),
        ("formats (uuid, date-time, date, email)", """{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"at":{"type":"string","format":"date-time"},"day":{"type":"string","format":"date"},"mail":{"type":"string","format":"email"}},"required":["id","at","day","mail"]}"""),
        ("unicode enums, maxLength", """{"type":"object","properties":{"city":{"enum":["東京","大阪","京都","Zürich","São Paulo"]},"mood":{"enum":["😀","😢",null,1]},"note":{"type":"string","maxLength":20}},"required":["city","mood","note"]}"""),
        ("patterns", """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}[0-9]{2,4}$"},"phone":{"type":"string","pattern":"^\\+[0-9]{1,3} [0-9]{3}-[0-9]{4}$"},"slug":{"type":"string","pattern":"^[a-z0-9]+(-[a-z0-9]+)*$"}},"required":["code","phone","slug"]}"""),
    ];

    /// <summary>The constraint of a benchmark case by short name.</summary>
    internal static OutputConstraint Create(string name) => name switch
    {
        "person" => OutputConstraint.FromJsonSchema(ConstraintBenchmarks.PersonSchema),
        "any JSON" => OutputConstraint.AnyJson(),
        "json.gbnf" => OutputConstraint.FromGbnf(JsonGbnf),
        "regex" => OutputConstraint.FromRegex(@"[A-Z][a-z]{2,12}( [A-Z][a-z]{2,12}){0,3}, \d{1,3} (years|days)"),
        _ => OutputConstraint.FromJsonSchema(MoreSchemas.Single(s => s.Name.StartsWith(name, StringComparison.Ordinal)).Schema),
    };

    public static int Run(string[] args)
    {
        int generations = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 20;
        var tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerBenchmarks.TokenizerPath);
        var clock = Stopwatch.StartNew();
        TokenVocabulary.For(tokenizer);
        Console.WriteLine($"vocabulary: {tokenizer.VocabularySize} tokens, slices built in {clock.ElapsedMilliseconds} ms");
        var cases = new List<(string Name, Func<OutputConstraint> Create)>
        {
            ("person schema", () => Create("person")),
            ("any JSON", () => Create("any JSON")),
            ("llama.cpp json.gbnf", () => Create("json.gbnf")),
            ("regex", () => Create("regex")),
        };
        foreach ((string name, string schema) in MoreSchemas) cases.Add((name, () => OutputConstraint.FromJsonSchema(schema)));
        var allFirst = new List<double>();
        var allFirstCpu = new List<double>();
        foreach ((string name, Func<OutputConstraint> create) in cases)
        {
            double bestCompile = double.MaxValue;
            for (int i = 0; i < 20; i++)
            {
                long t = Stopwatch.GetTimestamp();
                create();
                bestCompile = Math.Min(bestCompile, Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
            OutputConstraint c = create();
            var first = new List<double>();
            var firstCpu = new List<double>();
            var warm = new List<double>();
            var warmCpu = new List<double>();
            // First pass: every generation meets some parser states for the first time (they learn their token sets).
            for (int g = 0; g < generations; g++) Generate(c, tokenizer, g, first, firstCpu);
            // Second pass over the same generations: every state learned, the steady state of a reused constraint.
            for (int g = 0; g < generations; g++) Generate(c, tokenizer, g, warm, warmCpu);
            allFirst.AddRange(first);
            allFirstCpu.AddRange(firstCpu);
            Console.WriteLine($"{name}: compile best {bestCompile:F2} ms, {c.CacheFor(TokenVocabulary.For(tokenizer)).ComputedStates} states learned");
            Console.WriteLine($"    first pass ({first.Count} masks) wall {Summary(first)}");
            Console.WriteLine($"                           thread CPU {Summary(firstCpu)}");
            Console.WriteLine($"    warm pass  ({warm.Count} masks) wall {Summary(warm)}");
            Console.WriteLine($"                           thread CPU {Summary(warmCpu)}");
        }
        Console.WriteLine($"all first passes ({allFirst.Count} masks) wall {Summary(allFirst)}");
        Console.WriteLine($"                           thread CPU {Summary(allFirstCpu)}");
        return 0;
    }

    /// <summary>One random-logit generation (≤ 128 tokens, short tokens preferred); returns the masks computed and,
    /// when given lists, records each mask's wall and thread-CPU time in µs.</summary>
    internal static int Generate(OutputConstraint c, GemmaTokenizer tokenizer, int seed, List<double>? times, List<double>? cpuTimes)
    {
        int masks = 0;
        GrammarMatcher m = c.CreateMatcher(tokenizer);
        var mask = new ulong[(tokenizer.VocabularySize + 63) / 64];
        var rng = new Random(seed);
        for (int step = 0; step < 128 && !m.IsFinished; step++)
        {
            long cpu = ThreadCpu.Nanoseconds();
            long t = Stopwatch.GetTimestamp();
            m.FillMask(mask);
            times?.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
            cpuTimes?.Add((ThreadCpu.Nanoseconds() - cpu) / 1000.0);
            masks++;
            if (m.CanEnd && rng.Next(4) == 0) break;
            int total = 0;
            foreach (ulong w in mask) total += System.Numerics.BitOperations.PopCount(w);
            if (total == 0) break;
            // Prefer short tokens (as a model closing structures would) so walks reach deep and varied states.
            int pick = Pick(mask, rng.Next(total));
            for (int k = 0; k < 3 && m.Vocabulary.Bytes[pick].Length > 2; k++) pick = Pick(mask, rng.Next(total));
            if (!m.TryAdvance(pick)) throw new InvalidOperationException("mask and matcher disagree");
        }
        return masks;
    }

    /// <summary>The id of the <paramref name="n"/>-th set bit (a uniform pick among the allowed tokens, without a list).</summary>
    private static int Pick(ulong[] mask, int n)
    {
        for (int w = 0; ; w++)
        {
            int c = System.Numerics.BitOperations.PopCount(mask[w]);
            if (n >= c) { n -= c; continue; }
            ulong bits = mask[w];
            for (; n > 0; n--) bits &= bits - 1;
            return w * 64 + System.Numerics.BitOperations.TrailingZeroCount(bits);
        }
    }

    private static string Summary(List<double> us)
    {
        if (us.Count == 0) return "-";
        us.Sort();
        double P(double q) => us[Math.Min(us.Count - 1, (int)(q * us.Count))];
        return $"mean {us.Average():F1} us, p50 {P(0.5):F1} us, p99 {P(0.99):F1} us, max {us[^1]:F1} us";
    }
}
