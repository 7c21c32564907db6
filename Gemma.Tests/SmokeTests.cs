using Gemma.Kernels;
using NUnit.Framework;

namespace Gemma.Tests;

[Category("Kernels")]
public class SmokeTests
{
    [Test]
    public void BFloat16RoundTripsExactValues()
    {
        Assert.That(BFloat16.ToSingle(BFloat16.FromSingle(1.5f)), Is.EqualTo(1.5f));
    }
}
