using Gemma.Core.Constraints;
using Gemma.Tests.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Constraints;

[TestFixture]
public class ConstraintAllocationTests
{
    [Test]
    public void SteadyState_MaskAndAdvance_AllocateNothing()
    {
        var tok = TokenizerFixtures.Full;
        var c = OutputConstraint.FromJsonSchema("""{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"array","items":{"type":"integer"}}},"required":["text","n"],"additionalProperties":false}""");
        int[] ids = tok.EncodeToIds("{\"text\": \"日本語のテキストです。abc def\", \"n\": [1, 22, 333, 4444]}", addBos: false, parseControlTokens: false);
        var mask = new ulong[(tok.VocabularySize + 63) / 64];
        var m = c.CreateMatcher(tok);
        foreach (int id in ids)
        {
            m.FillMask(mask);
            Assert.That((mask[id >> 6] >> (id & 63) & 1) == 1, $"token {id} ('{tok.GetPiece(id)}') should be allowed");
            Assert.That(m.TryAdvance(id));
        }
        Assert.That(m.IsFinished);

        // Same path again on the same matcher: the states are learned and the buffers sized, so nothing is allocated.
        m.Reset();
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (int id in ids)
        {
            m.FillMask(mask);
            m.TryAdvance(id);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.EqualTo(0), "bytes allocated by a warm replay of masks and steps");
        Assert.That(m.IsFinished);
    }
}
