using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Generation;

[Category("Generation")]
public class StopSequenceMatcherTests
{
    [Test]
    public void HoldsBackAPossibleStartAndDropsTheStopSequence()
    {
        var m = new StopSequenceMatcher(["END"]);
        Assert.That(m.Push("abc E"), Is.EqualTo("abc "));
        Assert.That(m.Push("N"), Is.EqualTo(""));
        Assert.That(m.Push("Dxyz"), Is.EqualTo(""));
        Assert.That(m.Stopped, Is.True);
        Assert.That(m.Flush(), Is.EqualTo(""));
    }

    [Test]
    public void ReleasesHeldTextWhenTheSequenceBreaks()
    {
        var m = new StopSequenceMatcher(["END"]);
        Assert.That(m.Push("xE"), Is.EqualTo("x"));
        Assert.That(m.Push("Nd"), Is.EqualTo("ENd"));
        Assert.That(m.Push("E"), Is.EqualTo(""));
        Assert.That(m.Flush(), Is.EqualTo("E"));
        Assert.That(m.Stopped, Is.False);
    }

    [Test]
    public void EarliestOfSeveralStopsWins()
    {
        var m = new StopSequenceMatcher(["。", "です"]);
        Assert.That(m.Push("これはペンです。次"), Is.EqualTo("これはペン"));
    }

    [Test]
    public void NoStopsPassesEverythingThrough()
    {
        var m = new StopSequenceMatcher(null);
        Assert.That(m.Push("abc"), Is.EqualTo("abc"));
        Assert.That(m.Flush(), Is.EqualTo(""));
    }
}
