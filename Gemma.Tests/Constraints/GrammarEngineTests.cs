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
        for (int seed = 0; seed < 20; seed++)
        {
            var r = ConstraintHarness.Run(c, TokenizerFixtures.Full, seed, 60);
            TestContext.Out.WriteLine($"{seed}: finished={r.Finished} tokens={r.Tokens} {r.Text}");
            if (r.Finished) Assert.DoesNotThrow(() => JsonDocument.Parse(r.Text), r.Text);
        }
        TestContext.Out.WriteLine($"elapsed {sw.ElapsedMilliseconds} ms");
    }
}
