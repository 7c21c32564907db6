using System.Runtime.CompilerServices;
using System.Text.Json;
using Gemma.Core.Tokenization;

namespace Gemma.Core.Constraints;

/// <summary>
/// A rule the generated text must follow — a JSON Schema, any JSON value, a GBNF grammar (llama.cpp's format) or a
/// regular expression. Set it as <see cref="Generation.SamplingOptions.Constraint"/>: at every step the tokens that
/// cannot lead to a valid output are masked out before sampling, the end token is allowed only once the output is
/// complete, and when the token budget runs short generation steers to the shortest valid completion. See
/// <c>docs/structured-output.md</c> for the supported subset.
/// </summary>
/// <remarks>
/// Compiling checks everything up front: an unsupported schema keyword, a syntax error or a grammar that can never be
/// completed is a <see cref="GemmaException"/> naming the problem — nothing is silently ignored. An instance is
/// immutable and thread-safe; reuse it, since the token masks it learns (per tokenizer) are kept with it.
/// </remarks>
public sealed class OutputConstraint
{
    private readonly ConditionalWeakTable<TokenVocabulary, TokenMaskCache> _caches = new();

    private OutputConstraint(string description, GrammarDefinition definition)
    {
        Description = description;
        Grammar = GrammarCompiler.Compile(definition);
    }

    /// <summary>What the constraint is, for messages (e.g. "JSON schema", "GBNF grammar").</summary>
    public string Description { get; }

    internal CompiledGrammar Grammar { get; }

    /// <summary>Any JSON value (object, array, string, number, true, false, null), written compactly.</summary>
    public static OutputConstraint AnyJson() => new("any JSON value", JsonSchemaCompiler.AnyJsonGrammar());

    /// <summary>A JSON value valid under the JSON Schema <paramref name="schemaJson"/> (the supported subset is in
    /// <c>docs/structured-output.md</c>).</summary>
    /// <exception cref="GemmaException">The text is not JSON, or the schema uses an unsupported keyword or value.</exception>
    public static OutputConstraint FromJsonSchema(string schemaJson)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(schemaJson, new JsonDocumentOptions { MaxDepth = 4096 });
        }
        catch (JsonException e)
        {
            throw new GemmaException($"JSON schema: not valid JSON ({e.Message}).", e);
        }
        using (doc) return FromJsonSchema(doc.RootElement);
    }

    /// <summary>A JSON value valid under the JSON Schema <paramref name="schema"/>.</summary>
    /// <exception cref="GemmaException">The schema uses an unsupported keyword or value.</exception>
    public static OutputConstraint FromJsonSchema(JsonElement schema) =>
        WithLargeStack(() =>
        {
            GrammarDefinition definition;
            try
            {
                definition = JsonSchemaCompiler.Compile(schema);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or KeyNotFoundException)
            {
                // A safety net for malformed schemas the checks above missed: still an error naming the problem.
                throw new GemmaException($"JSON schema: malformed schema ({e.Message}).", e);
            }
            return new OutputConstraint("JSON schema", definition);
        });

    /// <summary>Text matching a GBNF grammar (llama.cpp's format; the start rule is <c>root</c>).</summary>
    /// <exception cref="GemmaException">A syntax error (with line and column), an undefined rule, left recursion or a
    /// rule that can never complete.</exception>
    public static OutputConstraint FromGbnf(string grammar)
    {
        ArgumentNullException.ThrowIfNull(grammar);
        return WithLargeStack(() => new OutputConstraint("GBNF grammar", GbnfParser.Parse(grammar)));
    }

    /// <summary>Text that matches <paramref name="pattern"/> as a whole (a regular-expression subset: literals,
    /// classes, <c>. \d \w \s</c>, groups, <c>|</c>, <c>* + ? {m,n}</c>; no backreferences or lookaround).</summary>
    /// <exception cref="GemmaException">A syntax error or an unsupported construct, named.</exception>
    public static OutputConstraint FromRegex(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return WithLargeStack(() =>
        {
            var def = new GrammarDefinition("root");
            def.Add("root", RegexParser.Parse(pattern, RegexParser.Mode.Anchored));
            return new OutputConstraint("regular expression", def);
        });
    }

    /// <summary>
    /// A JSON value valid under <paramref name="schema"/> or, when <paramref name="allowText"/>, free text that does
    /// not start with <paramref name="valueStart"/> (<c>{</c> for an object, <c>[</c> for an array; so a reply starting
    /// with it is always a complete value): the shape of a tool-calling reply, "either calls or an ordinary answer".
    /// </summary>
    internal static OutputConstraint JsonOrText(JsonElement schema, bool allowText, char valueStart, string description) =>
        WithLargeStack(() =>
        {
            Expr? text = allowText
                ? Expr.Opt(Expr.Seq(Expr.Chars(CodeRanges.Complement([(valueStart, valueStart)])), Expr.Star(Expr.Chars((0, CodeRanges.MaxCodePoint)))))
                : null;
            return new OutputConstraint(description, JsonSchemaCompiler.Compile(schema, text));
        });

    /// <summary>
    /// Compiling recurses along the nesting of the schema or grammar; a dedicated thread with a 64 MiB stack makes
    /// deep (hostile) inputs an ordinary error instead of a stack overflow, whatever thread the caller is on.
    /// </summary>
    private static OutputConstraint WithLargeStack(Func<OutputConstraint> compile)
    {
        OutputConstraint? result = null;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = compile();
            }
            catch (Exception e)
            {
                error = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
        }, maxStackSize: 64 << 20);
        thread.Start();
        thread.Join();
        error?.Throw();
        return result!;
    }

    internal TokenMaskCache CacheFor(TokenVocabulary vocabulary) =>
        _caches.GetValue(vocabulary, v => new TokenMaskCache(Grammar, v));

    internal GrammarMatcher CreateMatcher(GemmaTokenizer tokenizer) =>
        new(CacheFor(TokenVocabulary.For(tokenizer)));

    /// <inheritdoc />
    public override string ToString() => Description;
}
