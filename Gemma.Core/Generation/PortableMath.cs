namespace Gemma.Core.Generation;

/// <summary>
/// exp written with IEEE additions and multiplications only, so that the sampler's probabilities are bit-identical on
/// every OS and CPU. <see cref="Math.Exp"/> calls the platform's C library, whose last bit may differ between
/// Windows, glibc and macOS — enough to move a top-p boundary or a draw in rare cases.
/// </summary>
internal static class PortableMath
{
    private const double Log2E = 1.4426950408889634;
    // ln 2 split in two (fdlibm's constants): Ln2Hi has trailing zero bits, so k · Ln2Hi is exact for |k| ≤ 1100.
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;

    /// <summary>
    /// e^x to within a few ulps: x = k·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its Taylor series to r^13 (truncation error
    /// below 2e-16), scaled by 2^k. Exactly 1 at 0; 0 below −745.2; +∞ above 709.78; NaN stays NaN.
    /// </summary>
    public static double Exp(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x < -745.2) return 0.0;
        if (x > 709.78) return double.PositiveInfinity;
        double k = Math.Round(x * Log2E);
        double r = x - k * Ln2Hi - k * Ln2Lo;
        // Estrin's scheme (short dependency chains) for Σ r^i / i!, i = 0..13, in a fixed order.
        double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        double a0 = 1.0 + r;
        double a1 = 1.0 / 2 + r * (1.0 / 6);
        double a2 = 1.0 / 24 + r * (1.0 / 120);
        double a3 = 1.0 / 720 + r * (1.0 / 5040);
        double a4 = 1.0 / 40320 + r * (1.0 / 362880);
        double a5 = 1.0 / 3628800 + r * (1.0 / 39916800);
        double a6 = 1.0 / 479001600 + r * (1.0 / 6227020800);
        double low = (a0 + a1 * r2) + (a2 + a3 * r2) * r4;     // terms 0..7
        double high = (a4 + a5 * r2) + a6 * r4;                // terms 8..13, over r^8
        double p = low + high * r8;
        int n = (int)k;
        // 2^n built from its bits when it is a normal double (exact, and cheaper than ScaleB); ScaleB near the edges.
        return n is >= -1022 and <= 1023 ? p * BitConverter.Int64BitsToDouble((long)(n + 1023) << 52) : Math.ScaleB(p, n);
    }
}
