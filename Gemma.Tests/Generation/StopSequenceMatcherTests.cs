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

    /// <summary>Random texts cut into random pieces: the released text is the whole text up to the earliest stop.</summary>
    [Test]
    public void ReleasedTextIsTheTextBeforeTheEarliestStopWhateverThePieces()
    {
        var random = new Random(7);
        string[] stops = ["ab", "bba", "c", "aaab"];
        for (int trial = 0; trial < 2000; trial++)
        {
            string[] active = stops.Where(_ => random.Next(2) == 0).ToArray();
            string text = new([.. Enumerable.Range(0, random.Next(0, 40)).Select(_ => "abcd"[random.Next(active.Contains("c") ? 4 : 3)])]);
            int cut = active.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(text.Length).Min();
            var m = new StopSequenceMatcher(active);
            var released = new System.Text.StringBuilder();
            for (int at = 0; at < text.Length;)
            {
                int n = Math.Min(random.Next(0, 6), text.Length - at);
                released.Append(m.PushSpan(text.AsSpan(at, n)));
                at += n;
            }
            released.Append(m.FlushSpan());
            Assert.That(released.ToString(), Is.EqualTo(text[..cut]), $"{text} / {string.Join(",", active)}");
            Assert.That(m.Stopped, Is.EqualTo(cut < text.Length));
        }
    }

    [Test]
    public void PushSpanAllocatesNothingOnceWarm()
    {
        var m = new StopSequenceMatcher(["</answer>", "。。"]);
        Assert.That(PushMany(m, 100).Released, Is.GreaterThan(0));  // warm-up: the buffer grows, code is jitted
        (int released, long allocated) = PushMany(m, 1000);
        Assert.That(released, Is.GreaterThan(0));
        Assert.That(allocated, Is.Zero);
    }

    private static (int Released, long Allocated) PushMany(StopSequenceMatcher m, int count)
    {
        const string Piece = "回答の一部 </answ";
        long before = GC.GetAllocatedBytesForCurrentThread();
        int released = 0;
        for (int i = 0; i < count; i++) released += m.PushSpan(Piece).Length;
        return (released, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
