using System.Diagnostics;
using System.Text.Json;
using Gemma.Core.Constraints;
using Gemma.Tests.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Constraints;

[TestFixture]
public class GrammarEngineTests
{
    [Test]
    public void AnyJson_RandomWalksAtFullVocabulary_AreValidJson()
    {
        var c = OutputConstraint.AnyJson();
        var sw = Stopwatch.StartNew();
        for (int seed = 0; seed < 8; seed++)
        {
            var r = ConstraintHarness.Run(c, TokenizerFixtures.Full, seed, 60);
            TestContext.Out.WriteLine($"{seed}: finished={r.Finished} tokens={r.Tokens} {r.Text}");
            if (r.Finished) Assert.DoesNotThrow(() => JsonDocument.Parse(r.Text), r.Text);
        }
        TestContext.Out.WriteLine($"elapsed {sw.ElapsedMilliseconds} ms");
    }

    /// <summary>
    /// The mask (slices taken whole, walks, token tails after a rule ends) is exactly the set of tokens the matcher
    /// accepts one by one, at the full 256k vocabulary, in states along random walks: strings with and without
    /// <c>maxLength</c> (per-length slices), patterns, formats, unicode enums, whitespace that can end inside a token.
    /// </summary>
    [TestCase("""{"type":"object","properties":{"note":{"type":"string","maxLength":12},"tags":{"type":"array","items":{"type":"string"}}},"required":["note","tags"]}""")]
    [TestCase("""{"type":"object","properties":{"city":{"enum":["東京","Zürich","São Paulo"]},"code":{"type":"string","pattern":"^[A-Z]{2}[0-9]{2,4}$"},"day":{"type":"string","format":"date"}},"required":["city","code","day"]}""")]
    [TestCase("""{"anyOf":[{"type":"object","properties":{"k":{"const":"a"},"v":{"type":"array","items":{"type":"object","properties":{"x":{"type":"number"}}}}},"required":["k","v"]},{"type":"string","minLength":3}]}""")]
    [TestCase("gbnf")]
    [TestCase("regex")] // counted runs of one class: subtrees taken whole by run length, slices by family level search
    [TestCase("""{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"mail":{"type":"string","format":"email"},"s":{"type":"string","minLength":2,"maxLength":5}},"required":["id","mail","s"]}""")]
    public void Mask_EqualsTokenByTokenCheck_AtFullVocabulary(string schema)
    {
        OutputConstraint c = schema == "regex"
            ? OutputConstraint.FromRegex(@"[A-Z][a-z]{2,12}( [A-Z][a-z]{2,12}){0,3}, \d{1,3} (years|days)|[0-9a-f]{4,6}")
            : schema == "gbnf"
            ? OutputConstraint.FromGbnf("""
                root ::= "{" ws "\"a\"" ws ":" ws str ws "}"
                str ::= "\"" [^"\\]* "\""
                ws ::= | " " | "\n" [ \t]{0,20}
                """)
            : OutputConstraint.FromJsonSchema(schema);
        var tokenizer = TokenizerFixtures.Full;
        var mask = new ulong[(tokenizer.VocabularySize + 63) / 64];
        int checkedStates = 0;
        for (int seed = 0; seed < 3; seed++)
        {
            GrammarMatcher m = c.CreateMatcher(tokenizer);
            var rng = new Random(seed);
            for (int step = 0; step < 12 && !m.IsFinished; step++)
            {
                m.FillMask(mask);
                var allowed = new List<int>();
                for (int id = 0; id < tokenizer.VocabularySize; id++)
                {
                    bool inMask = (mask[id >> 6] & (1UL << id)) != 0;
                    bool accepted = m.NeedAfter(id) != int.MaxValue;
                    if (inMask != accepted)
                        Assert.Fail($"seed {seed} step {step}: token {id} '{tokenizer.Decode([id])}' in mask {inMask}, accepted {accepted}");
                    if (accepted) allowed.Add(id);
                }
                checkedStates++;
                if (allowed.Count == 0) break;
                // Prefer short tokens so the walk reaches many states (as a model closing structures would).
                int pick = allowed[rng.Next(allowed.Count)];
                for (int k = 0; k < 3 && m.Vocabulary.Bytes[pick].Length > 2; k++) pick = allowed[rng.Next(allowed.Count)];
                Assert.That(m.TryAdvance(pick), Is.True);
            }
        }
        Assert.That(checkedStates, Is.GreaterThan(10));
    }
}
