using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Kernels;

/// <summary>Short job (3 warm-ups, 5 iterations) plus GB/s and GFLOP/s columns: the machine is shared, keep runs brief.</summary>
internal sealed class KernelConfig : ManualConfig
{
    public KernelConfig()
    {
        // In-process: no per-benchmark project build; the numbers do not depend on it for these long calls.
        AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).WithLaunchCount(1)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
            .WithToolchain(InProcessEmitToolchain.Instance));
        AddColumn(ThroughputColumn.GBps, ThroughputColumn.GFlops);
    }
}

/// <summary>
/// <see cref="MatMul.Linear"/> at Gemma 2 2B shapes (rows × cols = out × in). Weights are random, in native memory
/// (like a memory mapping), and bigger than the caches except where noted, so decode numbers are memory bandwidth.
/// dotnet run -c Release --project Gemma.Benchmarks -- --filter '*LinearBenchmarks*'
/// </summary>
[Config(typeof(KernelConfig))]
public abstract unsafe class LinearBenchmarkBase
{
    private byte* _weights;
    private float[] _x = [];
    private float[] _y = [];
    private WeightMatrix _w;
    private WorkerPool? _pool;

    /// <summary>"rows×cols" (out × in).</summary>
    public abstract string Shape { get; set; }

    /// <summary>A <see cref="WeightType"/> name (a string: BenchmarkDotNet's generated code sees only public types).</summary>
    [Params(nameof(WeightType.BF16), nameof(WeightType.Q8_0), nameof(WeightType.Q4_K), nameof(WeightType.Q6_K))]
    public string Type { get; set; } = nameof(WeightType.BF16);

    private WeightType ElementType => Enum.Parse<WeightType>(Type);

    /// <summary>Tokens: 1 = decode, 64/128 = prefill.</summary>
    public abstract int N { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    public int Rows => int.Parse(Shape.Split('x')[0]);
    public int Cols => int.Parse(Shape.Split('x')[1]);

    [GlobalSetup]
    public void Setup()
    {
        long bytes = WeightMatrix.RowBytesOf(ElementType, Cols) * Rows;
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var rng = new Random(1);
        // Plausible values: small bf16 / Q8_0 blocks with a sane fp16 scale (content does not change the speed).
        var span = new Span<byte>(_weights, checked((int)Math.Min(bytes, int.MaxValue)));
        for (long off = 0; off < bytes; off += span.Length)
        {
            span = new Span<byte>(_weights + off, (int)Math.Min(bytes - off, int.MaxValue));
            rng.NextBytes(span);
        }
        if (ElementType == WeightType.BF16)
            for (long i = 0; i < bytes / 2; i++) ((ushort*)_weights)[i] &= 0xBFFF; // exponent ≤ 2⁰: no inf/NaN
        else
        {
            // Sane fp16 scales at each block's scale fields (2⁻¹⁵; Q4_K also dmin): no inf/NaN/denormal arithmetic.
            (int blockBytes, int[] scaleOffsets) = ElementType switch
            {
                WeightType.Q8_0 => (Q8_0.BlockBytes, new[] { 0 }),
                WeightType.Q4_K => (Dequantizer.Q4_KBlockBytes, new[] { 0, 2 }),
                _ => (Dequantizer.Q6_KBlockBytes, new[] { 208 }),
            };
            for (long b = 0; b < bytes / blockBytes; b++)
                foreach (int o in scaleOffsets) *(ushort*)(_weights + b * blockBytes + o) = 0x2000;
        }
        _w = new WeightMatrix(_weights, Rows, Cols, ElementType);
        _x = new float[N * Cols];
        for (int i = 0; i < _x.Length; i++) _x[i] = (float)(rng.NextDouble() - 0.5);
        _y = new float[N * Rows];
        _pool = Threads > 1 ? new WorkerPool(Threads) : null;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool?.Dispose();
        NativeMemory.AlignedFree(_weights);
    }

    [Benchmark]
    public void Linear() => MatMul.Linear(_w, _x, _y, N, _pool);
}

/// <summary>Decode (n = 1) at every 2B shape: q, k/v, o, gate/up, down, output head.</summary>
public class LinearDecodeBenchmarks : LinearBenchmarkBase
{
    [Params("2048x2304", "1024x2304", "2304x2048", "9216x2304", "2304x9216", "256000x2304")]
    public override string Shape { get; set; } = "2048x2304";

    [Params(1)]
    public override int N { get; set; } = 1;
}

/// <summary>Prefill (n = 64, 128) at the per-layer 2B shapes.</summary>
public class LinearPrefillBenchmarks : LinearBenchmarkBase
{
    [Params("2048x2304", "1024x2304", "2304x2048", "9216x2304", "2304x9216")]
    public override string Shape { get; set; } = "2048x2304";

    [Params(64, 128)]
    public override int N { get; set; } = 64;
}
