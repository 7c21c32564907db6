using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Sampling;

[Category("Sampling")]
public class PortableMathTests
{
    [Test]
    public void ExpMatchesMathExpToAFewUlps()
    {
        var random = new Random(3);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            // Mostly the sampler's range (x ≤ 0, small), plus the whole normal range.
            double x = i % 2 == 0 ? -40 * random.NextDouble() : -700 + 1400 * random.NextDouble();
            double expected = Math.Exp(x);
            worst = Math.Max(worst, Math.Abs(PortableMath.Exp(x) - expected) / expected);
        }
        TestContext.Out.WriteLine($"worst relative error {worst:E2}");
        Assert.That(worst, Is.LessThan(1e-15));
    }

    [Test]
    public void ExpSpecialValues()
    {
        Assert.Multiple(() =>
        {
            Assert.That(PortableMath.Exp(0), Is.EqualTo(1.0));  // the best token weighs exactly 1
            Assert.That(PortableMath.Exp(1), Is.EqualTo(Math.E).Within(1).Ulps);
            Assert.That(PortableMath.Exp(-1), Is.EqualTo(1 / Math.E).Within(2).Ulps);
            Assert.That(PortableMath.Exp(Math.Log(0.05)), Is.EqualTo(0.05).Within(1e-16));
            Assert.That(PortableMath.Exp(double.NegativeInfinity), Is.EqualTo(0.0));
            Assert.That(PortableMath.Exp(-800), Is.EqualTo(0.0));
            Assert.That(PortableMath.Exp(-740), Is.EqualTo(Math.Exp(-740)).Within(1e-320));  // subnormal
            Assert.That(PortableMath.Exp(710), Is.EqualTo(double.PositiveInfinity));
            Assert.That(PortableMath.Exp(double.PositiveInfinity), Is.EqualTo(double.PositiveInfinity));
            Assert.That(double.IsNaN(PortableMath.Exp(double.NaN)), Is.True);
        });
    }
}
