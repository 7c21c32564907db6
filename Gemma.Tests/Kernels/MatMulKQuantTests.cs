using Gemma.Kernels;
using NUnit.Framework;
using static Gemma.Tests.Kernels.KernelTestData;

namespace Gemma.Tests.Kernels;

/// <summary>
/// Q4_0/Q4_K/Q5_K/Q6_K weights read in place: (1) the active SIMD path against the scalar reference of the int8
/// block formulas, (2) that scalar reference against ggml's dequantized weights × the dequantized int8 activations
/// in double (it is the same sum, only float32 rounding apart), (3) the result against float activations (the
/// activation rounding bound). Weights are random block bytes with plausible fp16 scales, plus extreme blocks.
/// </summary>
[Category("Kernels")]
public unsafe class MatMulKQuantTests
{
    // Test parameters name the weight type as a string: NUnit test methods are public, WeightType is internal.
    private static readonly string[] Types = [nameof(WeightType.Q4_0), nameof(WeightType.Q4_K), nameof(WeightType.Q5_K), nameof(WeightType.Q6_K)];

    /// <summary>
    /// Random valid blocks: every byte random except fp16 scales (small positive d, dmin; Q6_K int8 scales any); with
    /// <paramref name="subnormalScales"/> about half the fp16 scales are subnormals (real files have many: Q6_K's d, small matrices).
    /// </summary>
    internal static GuardedBuffer<byte> RandomWeights(WeightType type, int rows, int cols, int seed, out WeightMatrix w, bool subnormalScales = false)
    {
        long bytes = WeightMatrix.RowBytesOf(type, cols) * rows;
        var buffer = new GuardedBuffer<byte>(bytes);
        var rng = new Random(seed);
        var span = new Span<byte>(buffer.Pointer, (int)bytes);
        rng.NextBytes(span);
        int blockBytes = type switch
        {
            WeightType.Q4_0 => Dequantizer.Q4_0BlockBytes, WeightType.Q4_K => Dequantizer.Q4_KBlockBytes,
            WeightType.Q5_K => Dequantizer.Q5_KBlockBytes, _ => Dequantizer.Q6_KBlockBytes,
        };
        ushort Scale() => subnormalScales && rng.Next(2) == 0 ? (ushort)rng.Next(1, 0x400)
            : BitConverter.HalfToUInt16Bits((Half)(0.0005 + rng.NextDouble() * 0.01));
        for (int b = 0; b < bytes / blockBytes; b++)
        {
            Span<byte> block = span.Slice(b * blockBytes, blockBytes);
            switch (type)
            {
                case WeightType.Q4_0: BitConverter.TryWriteBytes(block, Scale()); break;
                case WeightType.Q4_K or WeightType.Q5_K:
                    BitConverter.TryWriteBytes(block, Scale());
                    BitConverter.TryWriteBytes(block[2..], Scale());
                    break;
                case WeightType.Q6_K: BitConverter.TryWriteBytes(block[208..], Scale()); break;
            }
            if (b == 0)
            {
                // Extremes in the first block: largest q and scales (Q6_K: scale −128), to catch int16 saturation.
                int start = type switch { WeightType.Q4_0 => 2, WeightType.Q4_K or WeightType.Q5_K => 4, _ => 0 };
                int end = type == WeightType.Q6_K ? 192 : blockBytes;
                block[start..end].Fill(0xFF);
                if (type == WeightType.Q6_K) block.Slice(192, 16).Fill(0x80);
            }
        }
        w = new WeightMatrix(buffer.Pointer, rows, cols, type);
        return buffer;
    }

    private static void Dequantize(WeightType type, ReadOnlySpan<byte> row, Span<float> y)
    {
        switch (type)
        {
            case WeightType.Q4_0: Dequantizer.DequantizeQ4_0(row, y); break;
            case WeightType.Q4_K: Dequantizer.DequantizeQ4_K(row, y); break;
            case WeightType.Q5_K: Dequantizer.DequantizeQ5_K(row, y); break;
            case WeightType.Q6_K: Dequantizer.DequantizeQ6_K(row, y); break;
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    private static void Check(WeightType type, int rows, int cols, int n, int seed, WorkerPool? pool = null, bool subnormalScales = false)
    {
        using GuardedBuffer<byte> wb = RandomWeights(type, rows, cols, seed, out WeightMatrix w, subnormalScales);
        using var x = new GuardedBuffer<float>((long)n * cols);
        using var y = new GuardedBuffer<float>((long)n * rows);
        Fill(x.Span, seed + 1);
        y.Span.Fill(float.NaN);
        MatMul.Linear(w, x.Span, y.Span, n, pool);
        y.AssertFrontIntact();
        var yRef = new float[n * rows];
        MatMul.LinearQuantScalar(w, x.Span, yRef, n);

        // Independent double sums over ggml's dequantized weights: with the int8 activations (qx·dx) and with x itself.
        // Q4_0 uses Q8_0 activations (a scale per 32), the K-quants Q8_K (a scale per 256).
        bool k = type != WeightType.Q4_0;
        int span = k ? 256 : 32, blocks = cols / span;
        var xq = new sbyte[Math.Max(1, n * cols)];
        var xs = new float[Math.Max(1, n * blocks)];
        var bsums = new short[Math.Max(1, n * cols / 16)];
        fixed (float* px = x.Span)
        fixed (sbyte* pq = xq)
        fixed (float* ps = xs)
        fixed (short* pb = bsums)
        {
            if (k) MatMul.QuantizeQ8KScalar(px, n * blocks, pq, ps, pb);
            else MatMul.QuantizeScalar(px, n * blocks, pq, ps);
        }
        int rowBytes = (int)w.RowBytes;
        var wd = new float[cols];
        var wz = new float[cols];                         // Q4_K/Q5_K with dmin = 0: the d·sc·q part alone
        var rowCopy = new byte[rowBytes];
        int kBlock = type == WeightType.Q5_K ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        for (int r = 0; r < rows; r++)
        {
            var src = new ReadOnlySpan<byte>(w.Row(r), rowBytes);
            Dequantize(type, src, wd);
            if (type is WeightType.Q4_K or WeightType.Q5_K)
            {
                src.CopyTo(rowCopy);
                for (int b = 0; b < rowBytes / kBlock; b++) { rowCopy[b * kBlock + 2] = 0; rowCopy[b * kBlock + 3] = 0; }
                Dequantize(type, rowCopy, wz);
            }
            else wd.CopyTo(wz);
            for (int t = 0; t < n; t++)
            {
                double exactQ = 0, exactX = 0, magnitude = 0, bound = 0;
                for (int c = 0; c < cols; c++)
                {
                    double xd = xq[t * cols + c] * (double)xs[t * blocks + c / span];
                    exactQ += wd[c] * xd;
                    exactX += wd[c] * (double)x.Span[t * cols + c];
                    // |d1·q| + |m1| per element (for Q4_0/Q6_K just |w|): what the float sums actually add up.
                    magnitude += (Math.Abs(wz[c]) + Math.Abs(wz[c] - wd[c])) * Math.Abs(xd);
                    bound += xs[t * blocks + c / span] / 2 * Math.Abs(wd[c]) * (1 + 1e-4);
                }
                int i = t * rows + r;
                string where = $"{type} {rows}×{cols} n={n} ({t},{r})";
                double errScalar = Math.Abs(yRef[i] - exactQ);
                if (!(errScalar <= 64 * U * magnitude + 1e-30))
                    Assert.Fail($"scalar reference vs dequantized: {where}: {yRef[i]:R} vs {exactQ:R}, error {errScalar:E3} > {64 * U * magnitude:E3}");
                double errSimd = Math.Abs(y.Span[i] - yRef[i]);
                if (!(errSimd <= 64 * U * magnitude + 1e-30))
                    Assert.Fail($"kernel vs scalar reference: {where}: {y.Span[i]:R} vs {yRef[i]:R}, error {errSimd:E3} > {64 * U * magnitude:E3}");
                double errX = Math.Abs(y.Span[i] - exactX);
                if (!(errX <= bound + 64 * U * magnitude + 1e-30))
                    Assert.Fail($"kernel vs float activations: {where}: error {errX:E3} above the activation rounding bound {bound:E3}");
            }
        }
    }

    /// <summary>The Q8_K quantizer of the active path equals the scalar one bit for bit; bsums are the sums of each 16.</summary>
    [Test]
    public void Q8KQuantizerMatchesScalarReference([Values(1, 9, 36)] int superBlocks)
    {
        int len = superBlocks * 256;
        float[] x = Random(len, superBlocks);
        x[5] = 0; x[7] = -x[3];
        if (superBlocks > 1) Array.Clear(x, 256, 256);          // an all-zero block: scale 0, q 0
        var q = new sbyte[len]; var d = new float[superBlocks]; var b = new short[len / 16];
        var qr = new sbyte[len]; var dr = new float[superBlocks]; var br = new short[len / 16];
        fixed (float* px = x)
        fixed (sbyte* pq = q, pqr = qr)
        fixed (float* pd = d, pdr = dr)
        fixed (short* pb = b, pbr = br)
        {
            MatMul.QuantizeQ8K(px, superBlocks, pq, pd, pb);
            MatMul.QuantizeQ8KScalar(px, superBlocks, pqr, pdr, pbr);
        }
        Assert.That(q, Is.EqualTo(qr).AsCollection);
        Assert.That(d, Is.EqualTo(dr).AsCollection);
        Assert.That(b, Is.EqualTo(br).AsCollection);
        for (int g = 0; g < len / 16; g++)
        {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += qr[16 * g + j];
            Assert.That((int)br[g], Is.EqualTo(sum), $"bsums[{g}]");
        }
        for (int i = 0; i < superBlocks; i++)
        {
            float amax = 0;
            for (int j = 0; j < 256; j++) amax = MathF.Max(amax, MathF.Abs(x[256 * i + j]));
            Assert.That(dr[i], Is.EqualTo(amax / 127f), $"scale {i}");
            for (int j = 0; j < 256; j++)
                Assert.That(Math.Abs(qr[256 * i + j] * (double)dr[i] - x[256 * i + j]), Is.LessThanOrEqualTo(dr[i] * 0.5 * (1 + 1e-6)), $"element {256 * i + j}");
        }
    }

    [Test]
    public void ScaleMinUnpackingMatchesGgml()
    {
        var rng = new Random(3);
        var packed = new byte[12];
        for (int trial = 0; trial < 2000; trial++)
        {
            rng.NextBytes(packed);
            ulong scales, mins;
            fixed (byte* p = packed) MatMul.UnpackScaleMinK4(p, out scales, out mins);
            for (int j = 0; j < 8; j++)
            {
                // get_scale_min_k4, spelled out as in ggml-quants.c.
                int sc = j < 4 ? packed[j] & 63 : (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4);
                int m = j < 4 ? packed[j + 4] & 63 : (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
                Assert.That((int)(byte)(scales >> (8 * j)), Is.EqualTo(sc), $"scale {j}");
                Assert.That((int)(byte)(mins >> (8 * j)), Is.EqualTo(m), $"min {j}");
            }
        }
    }

    [Test]
    public void EveryBlockCount([ValueSource(nameof(Types))] string typeName)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        int block = WeightMatrix.BlockSizeOf(type);
        int max = block == 32 ? 40 : 12;
        for (int blocks = 0; blocks <= max; blocks++)
        {
            Check(type, 7, blocks * block, 1, blocks);
            Check(type, 3, blocks * block, 2, 100 + blocks);
        }
    }

    [Test]
    public void RowAndTokenCounts([ValueSource(nameof(Types))] string typeName, [Values(1, 2, 3, 5, 9)] int n) =>
        Check(Enum.Parse<WeightType>(typeName), 17 + n, 512, n, n);

    [Test]
    public void GemmaShapes([ValueSource(nameof(Types))] string typeName, [Values(0, 1, 2)] int shape)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        // Gemma 2 2B: q_proj [2048, 2304], o_proj [2304, 2048], down_proj [2304, 9216] (rows cut to keep the
        // double reference fast; the row count does not change the per-row kernel).
        (int rows, int cols) = shape switch { 0 => (2048, 2304), 1 => (256, 2048), _ => (96, 9216) };
        Check(type, rows, cols, 1, rows + cols);
    }

    /// <summary>The packed GEMM (n ≥ 2 on 512 bits): odd row counts (a zero-padded 4-row group), odd token counts (a
    /// token left over after the 2-token tiles), the 2B's column counts, with and without a pool.</summary>
    [Test]
    public void PrefillShapes([ValueSource(nameof(Types))] string typeName, [Values(0, 1)] int shape)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        using var pool = new WorkerPool(2);
        if (shape == 0) Check(type, 67, 2304, 17, 11, pool);
        else Check(type, 37, 9216, 6, 12);
    }

    /// <summary>fp16 subnormal block scales (d, dmin), decode and a batch: the scale conversion is exact there too.</summary>
    [Test]
    public void SubnormalScales([ValueSource(nameof(Types))] string typeName, [Values(1, 3)] int n) =>
        Check(Enum.Parse<WeightType>(typeName), 40, 2304, n, 21 + n, subnormalScales: true);

    [Test]
    public void WithPool([ValueSource(nameof(Types))] string typeName)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        using var pool = new WorkerPool(2);
        Check(type, 1001, 2304, 3, 5, pool);
    }

    [Test]
    public void RowDecoderMatchesDequantizer([ValueSource(nameof(Types))] string typeName)
    {
        WeightType type = Enum.Parse<WeightType>(typeName);
        using GuardedBuffer<byte> wb = RandomWeights(type, 5, 512, 9, out WeightMatrix w);
        var expected = new float[512];
        var actual = new float[512];
        for (int r = 0; r < 5; r++)
        {
            Dequantize(type, new ReadOnlySpan<byte>(w.Row(r), (int)w.RowBytes), expected);
            WeightRows.ToSingle(w, r, actual);
            Assert.That(actual, Is.EqualTo(expected).AsCollection, $"row {r}");
        }
    }

    [Test]
    public void RowsNotAMultipleOfTheBlockAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new WeightMatrix(null, 1, 128, WeightType.Q4_K));
        Assert.Throws<ArgumentException>(() => new WeightMatrix(null, 1, 48, WeightType.Q4_0));
        Assert.DoesNotThrow(() => new WeightMatrix(null, 1, 256, WeightType.Q6_K));
    }
}
