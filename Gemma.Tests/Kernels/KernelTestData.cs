using Gemma.Kernels;

namespace Gemma.Tests.Kernels;

/// <summary>Random inputs (fixed seeds) and independent double-precision references for the kernel tests.</summary>
internal static unsafe class KernelTestData
{
    /// <summary>float32 unit roundoff 2⁻²⁴.</summary>
    public const double U = 1.0 / (1 << 24);

    public static void Fill(Span<float> x, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
    }

    public static float[] Random(int length, int seed, float scale = 1f)
    {
        var x = new float[length];
        Fill(x, seed, scale);
        return x;
    }

    /// <summary>A guarded weight matrix of random values (uniform ±1, encoded; Q8_0 quantized like ggml: d = amax/127).</summary>
    public static GuardedBuffer<byte> Weights(WeightType type, int rows, int cols, int seed, out WeightMatrix w)
    {
        long bytes = WeightMatrix.RowBytesOf(type, cols) * rows;
        var buffer = new GuardedBuffer<byte>(bytes);
        var rng = new Random(seed);
        byte* p = buffer.Pointer;
        var values = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) values[c] = (float)(rng.NextDouble() * 2 - 1);
            switch (type)
            {
                case WeightType.F32:
                    for (int c = 0; c < cols; c++) ((float*)p)[c] = values[c];
                    break;
                case WeightType.BF16:
                    for (int c = 0; c < cols; c++) ((ushort*)p)[c] = BFloat16.FromSingle(values[c]);
                    break;
                case WeightType.Q8_0:
                    for (int b = 0; b < cols / 32; b++)
                    {
                        byte* block = p + b * Q8_0.BlockBytes;
                        float amax = 0;
                        for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(values[b * 32 + j]));
                        Half d = (Half)(amax / 127);
                        *(ushort*)block = BitConverter.HalfToUInt16Bits(d);
                        for (int j = 0; j < 32; j++)
                            ((sbyte*)block)[2 + j] = (sbyte)Math.Clamp(Math.Round(values[b * 32 + j] / (float)d), -128, 127);
                    }
                    // One block of extremes: −128 must work in the sign trick.
                    if (r == 0 && cols >= 32) { ((sbyte*)p)[2] = -128; ((sbyte*)p)[3] = 127; }
                    break;
            }
            p += WeightMatrix.RowBytesOf(type, cols);
        }
        w = new WeightMatrix(buffer.Pointer, rows, cols, type);
        return buffer;
    }

    /// <summary>Weight element as double, decoded independently of the kernels.</summary>
    public static double Weight(in WeightMatrix w, int r, int c)
    {
        byte* row = w.Row(r);
        return w.Type switch
        {
            WeightType.F32 => ((float*)row)[c],
            WeightType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)row)[c] << 16),
            WeightType.Q8_0 => (double)BitConverter.UInt16BitsToHalf(*(ushort*)(row + c / 32 * Q8_0.BlockBytes))
                               * ((sbyte*)row)[c / 32 * Q8_0.BlockBytes + 2 + c % 32],
            _ => throw new ArgumentOutOfRangeException(nameof(w)),
        };
    }

    /// <summary>Double-precision <c>y = x·Wᵀ</c> and the magnitudes Σ|w·x| that scale the tolerance.</summary>
    public static (double[] Y, double[] Magnitude) Linear(in WeightMatrix w, ReadOnlySpan<float> x, int n)
    {
        var y = new double[n * w.Rows];
        var mag = new double[n * w.Rows];
        var row = new double[w.Cols];
        for (int r = 0; r < w.Rows; r++)
        {
            for (int c = 0; c < w.Cols; c++) row[c] = Weight(w, r, c);
            for (int t = 0; t < n; t++)
            {
                double s = 0, m = 0;
                ReadOnlySpan<float> xt = x.Slice(t * w.Cols, w.Cols);
                for (int c = 0; c < w.Cols; c++) { double p = row[c] * xt[c]; s += p; m += Math.Abs(p); }
                y[t * w.Rows + r] = s;
                mag[t * w.Rows + r] = m;
            }
        }
        return (y, mag);
    }

    /// <summary>
    /// Asserts |actual − expected| ≤ tol·magnitude + tiny for every element. For sums of random-sign products the
    /// partial sums grow like √k, so float32 accumulation error is about U·Σ|w·x| for any summation order
    /// (probabilistic bound, Higham §4.2); a wrong, missing or doubled term would be ≈ Σ|w·x|/cols, far above 32·U·Σ|w·x|
    /// for the sizes tested.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> actual, double[] expected, double[] magnitude, double tol, string what)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= tol * magnitude[i] + 1e-30))
                NUnit.Framework.Assert.Fail($"{what}: element {i}: got {actual[i]:R}, expected {expected[i]:R} (error {err:E3}, allowed {tol * magnitude[i]:E3})");
        }
    }
}
