using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using Gemma.Cli.Bench;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Kernels;

/// <summary>
/// <c>linear-quick</c>: best-of-N stopwatch timings of <see cref="MatMul.Linear"/> for a list of cases, interleaved
/// round by round (case A, B, C, A, B, C, …; <c>--peak</c> adds register-resident FMA chains, the ceiling in the same minutes) so that the load of a shared machine hits every case alike. A companion
/// to the BenchmarkDotNet classes for quick A/B work; the best time is the least-disturbed one.
/// <code>dotnet run -c Release --project Gemma.Benchmarks -- linear-quick --rounds 20 --threads 2 bf16:2048x2304:1 q8_0:9216x2304:128</code>
/// Each case is <c>type:rowsxcols:n</c>; prints best and median time, GB/s of weights and GFLOP/s. <c>--cpu</c> (1 thread)
/// times the thread's CPU time instead of the wall clock — on a shared machine that leaves out the waits for a core.
/// </summary>
internal static unsafe class LinearQuickCommand
{
    public static int Run(string[] args)
    {
        int rounds = 15, threads = 1, offset = 0;
        bool cpu = false, peak = false, subnormal = false;
        var peakTimes = new List<double>();
        var cases = new List<(WeightType Type, int Rows, int Cols, int N)>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(args[++i]); break;
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--offset": offset = int.Parse(args[++i]); break; // bytes past a 4 KiB boundary (alignment tests)
                case "--cpu": cpu = true; break; // thread CPU time instead of wall time (1 thread: leaves out waiting for a core)
                case "--peak": peak = true; break; // also time register-resident FMA chains each round (the ceiling, same minutes)
                case "--subnormal-scales": subnormal = true; break; // 4/5/6-bit blocks with fp16 subnormal d (and dmin), as in real files
                default:
                    string[] p = args[i].Split(':');
                    string[] s = p[1].Split('x');
                    WeightType type = p[0].ToLowerInvariant() switch
                    {
                        "f32" => WeightType.F32,
                        "bf16" => WeightType.BF16,
                        "q8_0" => WeightType.Q8_0,
                        "q4_0" => WeightType.Q4_0,
                        "q4_k" => WeightType.Q4_K,
                        "q5_k" => WeightType.Q5_K,
                        "q6_k" => WeightType.Q6_K,
                        _ => throw new ArgumentException($"unknown type {p[0]}"),
                    };
                    cases.Add((type, int.Parse(s[0]), int.Parse(s[1]), int.Parse(p[2])));
                    break;
            }
        }
        using var pool = threads > 1 ? new WorkerPool(threads) : null;
        var setups = cases.Select(c => Setup(c.Type, c.Rows, c.Cols, c.N, offset, subnormal)).ToArray();
        var times = cases.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < rounds + 2; round++)
        {
            if (peak)
            {
                long p0 = Stopwatch.GetTimestamp(), q0 = ThreadCpu.Nanoseconds();
                MachineLimits.FmaChains(1_000_000, round);
                double us = cpu ? (ThreadCpu.Nanoseconds() - q0) / 1e3 : Stopwatch.GetElapsedTime(p0).TotalMicroseconds;
                if (round >= 2) peakTimes.Add(us);
            }
            for (int i = 0; i < cases.Count; i++)
            {
                (WeightMatrix w, float[] x, float[] y) = setups[i];
                // Short calls are repeated so a sample lasts ≥ ~2 ms.
                int reps = Math.Max(1, (int)(2_000_000L / Math.Max(1, w.ByteLength / 20 + (long)w.Rows * w.Cols * cases[i].N / 50)));
                long t0 = Stopwatch.GetTimestamp(), c0 = ThreadCpu.Nanoseconds();
                for (int r = 0; r < reps; r++) MatMul.Linear(w, x, y, cases[i].N, pool);
                double us = (cpu ? (ThreadCpu.Nanoseconds() - c0) / 1e3 : Stopwatch.GetElapsedTime(t0).TotalMicroseconds) / reps;
                if (round >= 2) times[i].Add(us); // two warm-up rounds (JIT, page faults)
            }
        }
        if (peak)
        {
            double best = peakTimes.Min(), flops = 1_000_000.0 * MachineLimits.FmaFlopsPerIteration;
            Console.WriteLine($"FMA peak (1 thread, register-resident chains, best of {peakTimes.Count}): {flops / best / 1e3:F1} GFLOP/s");
        }
        if (cpu && threads > 1) Console.WriteLine("warning: --cpu measures the calling thread only");
        Console.WriteLine($"threads={threads} rounds={rounds} offset={offset} time={(cpu ? "thread CPU" : "wall")}");
        Console.WriteLine("| type | rows×cols | n | best µs | median µs | GB/s (best) | GFLOP/s (best) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        for (int i = 0; i < cases.Count; i++)
        {
            var t = times[i].Order().ToArray();
            double best = t[0], median = t[t.Length / 2];
            var c = cases[i];
            double bytes = setups[i].W.ByteLength, flops = 2.0 * c.Rows * c.Cols * c.N;
            Console.WriteLine($"| {c.Type} | {c.Rows}×{c.Cols} | {c.N} | {best:F1} | {median:F1} | {bytes / best / 1e3:F1} | {flops / best / 1e3:F1} |");
        }
        return 0;
    }

    private static (WeightMatrix W, float[] X, float[] Y) Setup(WeightType type, int rows, int cols, int n, int offset, bool subnormal)
    {
        long bytes = WeightMatrix.RowBytesOf(type, cols) * rows;
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes + offset), 4096) + offset; // lives until the process exits
        var rng = new Random(1);
        for (long off = 0; off < bytes; off += int.MaxValue)
            rng.NextBytes(new Span<byte>(p + off, (int)Math.Min(bytes - off, int.MaxValue)));
        if (type == WeightType.BF16)
            for (long i = 0; i < bytes / 2; i++) ((ushort*)p)[i] &= 0xBFFF;
        else if (type == WeightType.F32)
            for (long i = 0; i < bytes / 4; i++) ((uint*)p)[i] &= 0xBFFFFFFF;
        else if (type == WeightType.Q8_0)
            for (long b = 0; b < bytes / Q8_0.BlockBytes; b++) *(ushort*)(p + b * Q8_0.BlockBytes) = 0x2000;
        else
        {
            // 4/5/6-bit blocks: random quants and scales, small positive fp16 d (and dmin); with --subnormal-scales
            // fp16 subnormals (below 2⁻¹⁴), as real files have for d of Q6_K and of small-valued matrices.
            (ushort scaleBits, ushort minBits) = subnormal ? ((ushort)0x0123, (ushort)0x0081) : ((ushort)0x1400, (ushort)0x1000);
            (int blockBytes, int dAt) = type switch
            {
                WeightType.Q4_0 => (18, 0), WeightType.Q4_K => (144, 0), WeightType.Q5_K => (176, 0), _ => (210, 208),
            };
            for (long b = 0; b < bytes / blockBytes; b++)
            {
                *(ushort*)(p + b * blockBytes + dAt) = scaleBits;
                if (type is WeightType.Q4_K or WeightType.Q5_K) *(ushort*)(p + b * blockBytes + 2) = minBits;
            }
        }
        var x = new float[n * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        return (new WeightMatrix(p, rows, cols, type), x, new float[n * rows]);
    }
}
