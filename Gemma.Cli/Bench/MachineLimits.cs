using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using Gemma.Kernels;

namespace Gemma.Cli.Bench;

/// <summary>
/// This machine's own limits, measured the way the kernels run (same <see cref="WorkerPool"/>, same vector width):
/// read bandwidth from DRAM and the float32 FMA peak. The C references in shared/tools/roofline (stream.c
/// "Read(sum)", fma_peak.c) measure the same two numbers without the runtime in the way.
/// </summary>
internal static unsafe class MachineLimits
{
    // The read buffer is split into chunks claimed dynamically (like the matmul row chunks), so a thread that
    // starts late does not leave half of the buffer to one thread.
    private const long ChunkBytes = 4L << 20;

    /// <summary>
    /// Best-of-<paramref name="reps"/> read bandwidth in GB/s (1e9 bytes/s) over a buffer of
    /// <paramref name="bytes"/> — make it several times the last-level cache, or this measures the cache.
    /// Each pass sums every float of the buffer (vector adds, 8 independent accumulators).
    /// </summary>
    public static double ReadBandwidth(WorkerPool? pool, long bytes, int reps = 5)
    {
        long chunks = Math.Max(1, bytes / ChunkBytes);
        bytes = chunks * ChunkBytes;
        float* data = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        float* sinks = (float*)NativeMemory.AllocZeroed((nuint)(chunks * sizeof(float)));
        try
        {
            // Touch every page (and make the values non-trivial) before timing.
            new Span<float>(data, (int)Math.Min(int.MaxValue, ChunkBytes / sizeof(float))).Fill(1f);
            for (long c = 1; c < chunks; c++)
                Buffer.MemoryCopy(data, (byte*)data + c * ChunkBytes, ChunkBytes, ChunkBytes);
            var work = new ReadWork { Data = data, Sinks = sinks, FloatsPerChunk = ChunkBytes / sizeof(float) };
            double best = double.MaxValue;
            for (int r = 0; r < reps; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (pool != null) pool.For((int)chunks, ref work);
                else for (int i = 0; i < chunks; i++) work.Execute(i);
                best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            return bytes / best / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(data);
            NativeMemory.Free(sinks);
        }
    }

    /// <summary>
    /// Best-of-<paramref name="reps"/> float32 FMA throughput in GFLOP/s (an FMA counts 2 FLOPs) with every thread of
    /// <paramref name="pool"/> running independent register-resident FMA chains (16 on Vector512, 12 on Vector256).
    /// </summary>
    public static double FmaPeak(WorkerPool? pool, int reps = 5, long iterationsPerItem = 2_000_000)
    {
        int threads = pool?.Threads ?? 1;
        int items = threads * 4;
        float* sinks = (float*)NativeMemory.AllocZeroed((nuint)(items * sizeof(float)));
        try
        {
            var work = new FmaWork { Sinks = sinks, Iterations = iterationsPerItem };
            double best = double.MaxValue;
            for (int r = 0; r < reps; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (pool != null) pool.For(items, ref work);
                else for (int i = 0; i < items; i++) work.Execute(i);
                best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            return items * iterationsPerItem * FmaFlopsPerIteration / best / 1e9;
        }
        finally { NativeMemory.Free(sinks); }
    }

    /// <summary>FLOPs of one iteration of <see cref="FmaChains"/>: chains × lanes × 2.</summary>
    internal static int FmaFlopsPerIteration =>
        Vector512.IsHardwareAccelerated ? 16 * 16 * 2 : Vector256.IsHardwareAccelerated ? 12 * 8 * 2 : HasFma128 ? 12 * 4 * 2 : 8 * 2;

    /// <summary>
    /// Vector128 with a hardware FMA: ARM64 (AdvSimd, where Vector128 is the widest path) and x86 run at 128 bits. Without
    /// a hardware FMA <c>Vector128.FusedMultiplyAdd</c> is a software routine, so the scalar chains measure better.
    /// </summary>
    private static bool HasFma128 => Vector128.IsHardwareAccelerated && (AdvSimd.IsSupported || System.Runtime.Intrinsics.X86.Fma.IsSupported);

    private struct ReadWork : IParallelWork
    {
        public float* Data;
        public float* Sinks;
        public long FloatsPerChunk;

        public void Execute(int index) => Sinks[index] = Sum(Data + index * FloatsPerChunk, FloatsPerChunk);
    }

    private struct FmaWork : IParallelWork
    {
        public float* Sinks;
        public long Iterations;

        public void Execute(int index) => Sinks[index] = FmaChains(Iterations, index * 1e-3f);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Sum(float* p, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; i + 128 <= n; i += 128)
            {
                a0 += Vector512.Load(p + i); a1 += Vector512.Load(p + i + 16);
                a2 += Vector512.Load(p + i + 32); a3 += Vector512.Load(p + i + 48);
                a4 += Vector512.Load(p + i + 64); a5 += Vector512.Load(p + i + 80);
                a6 += Vector512.Load(p + i + 96); a7 += Vector512.Load(p + i + 112);
            }
            float s = Vector512.Sum((a0 + a1) + (a2 + a3) + ((a4 + a5) + (a6 + a7)));
            for (; i < n; i++) s += p[i];
            return s;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; i + 64 <= n; i += 64)
            {
                a0 += Vector256.Load(p + i); a1 += Vector256.Load(p + i + 8);
                a2 += Vector256.Load(p + i + 16); a3 += Vector256.Load(p + i + 24);
                a4 += Vector256.Load(p + i + 32); a5 += Vector256.Load(p + i + 40);
                a6 += Vector256.Load(p + i + 48); a7 += Vector256.Load(p + i + 56);
            }
            float s = Vector256.Sum((a0 + a1) + (a2 + a3) + ((a4 + a5) + (a6 + a7)));
            for (; i < n; i++) s += p[i];
            return s;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; i + 32 <= n; i += 32)
            {
                a0 += Vector128.Load(p + i); a1 += Vector128.Load(p + i + 4);
                a2 += Vector128.Load(p + i + 8); a3 += Vector128.Load(p + i + 12);
                a4 += Vector128.Load(p + i + 16); a5 += Vector128.Load(p + i + 20);
                a6 += Vector128.Load(p + i + 24); a7 += Vector128.Load(p + i + 28);
            }
            float s = Vector128.Sum((a0 + a1) + (a2 + a3) + ((a4 + a5) + (a6 + a7)));
            for (; i < n; i++) s += p[i];
            return s;
        }
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; i + 4 <= n; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
        for (; i < n; i++) s0 += p[i];
        return (s0 + s1) + (s2 + s3);
    }

    // c = c·a + b converges to b / (1 − a) ≈ 0.1: no overflow, no denormals, and the JIT cannot fold it away.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float FmaChains(long iterations, float seed)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a = Vector512.Create(0.999999f), b = Vector512.Create(1e-7f);
            Vector512<float> c0 = Vector512.Create(seed), c1 = c0 + b, c2 = c1 + b, c3 = c2 + b, c4 = c3 + b, c5 = c4 + b,
                c6 = c5 + b, c7 = c6 + b, c8 = c7 + b, c9 = c8 + b, c10 = c9 + b, c11 = c10 + b, c12 = c11 + b, c13 = c12 + b,
                c14 = c13 + b, c15 = c14 + b;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b);
                c2 = Vector512.FusedMultiplyAdd(c2, a, b); c3 = Vector512.FusedMultiplyAdd(c3, a, b);
                c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
                c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b);
                c8 = Vector512.FusedMultiplyAdd(c8, a, b); c9 = Vector512.FusedMultiplyAdd(c9, a, b);
                c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
                c12 = Vector512.FusedMultiplyAdd(c12, a, b); c13 = Vector512.FusedMultiplyAdd(c13, a, b);
                c14 = Vector512.FusedMultiplyAdd(c14, a, b); c15 = Vector512.FusedMultiplyAdd(c15, a, b);
            }
            return Vector512.Sum(((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)) + ((c12 + c13) + (c14 + c15)));
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a = Vector256.Create(0.999999f), b = Vector256.Create(1e-7f);
            Vector256<float> c0 = Vector256.Create(seed), c1 = c0 + b, c2 = c1 + b, c3 = c2 + b, c4 = c3 + b, c5 = c4 + b,
                c6 = c5 + b, c7 = c6 + b, c8 = c7 + b, c9 = c8 + b, c10 = c9 + b, c11 = c10 + b;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b);
                c2 = Vector256.FusedMultiplyAdd(c2, a, b); c3 = Vector256.FusedMultiplyAdd(c3, a, b);
                c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
                c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b);
                c8 = Vector256.FusedMultiplyAdd(c8, a, b); c9 = Vector256.FusedMultiplyAdd(c9, a, b);
                c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
            }
            return Vector256.Sum(((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)));
        }
        if (HasFma128)
        {
            // ARM64: 12 chains cover 2 FMA pipes × 4 cycles of latency (Cortex-A76 / Neoverse N1) with room to spare.
            Vector128<float> a = Vector128.Create(0.999999f), b = Vector128.Create(1e-7f);
            Vector128<float> c0 = Vector128.Create(seed), c1 = c0 + b, c2 = c1 + b, c3 = c2 + b, c4 = c3 + b, c5 = c4 + b,
                c6 = c5 + b, c7 = c6 + b, c8 = c7 + b, c9 = c8 + b, c10 = c9 + b, c11 = c10 + b;
            for (long i = 0; i < iterations; i++)
            {
                c0 = Vector128.FusedMultiplyAdd(c0, a, b); c1 = Vector128.FusedMultiplyAdd(c1, a, b);
                c2 = Vector128.FusedMultiplyAdd(c2, a, b); c3 = Vector128.FusedMultiplyAdd(c3, a, b);
                c4 = Vector128.FusedMultiplyAdd(c4, a, b); c5 = Vector128.FusedMultiplyAdd(c5, a, b);
                c6 = Vector128.FusedMultiplyAdd(c6, a, b); c7 = Vector128.FusedMultiplyAdd(c7, a, b);
                c8 = Vector128.FusedMultiplyAdd(c8, a, b); c9 = Vector128.FusedMultiplyAdd(c9, a, b);
                c10 = Vector128.FusedMultiplyAdd(c10, a, b); c11 = Vector128.FusedMultiplyAdd(c11, a, b);
            }
            return Vector128.Sum(((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)));
        }
        float s0 = seed, s1 = seed + 1e-7f, s2 = seed + 2e-7f, s3 = seed + 3e-7f, s4 = seed + 4e-7f, s5 = seed + 5e-7f, s6 = seed + 6e-7f, s7 = seed + 7e-7f;
        for (long i = 0; i < iterations; i++)
        {
            s0 = MathF.FusedMultiplyAdd(s0, 0.999999f, 1e-7f); s1 = MathF.FusedMultiplyAdd(s1, 0.999999f, 1e-7f);
            s2 = MathF.FusedMultiplyAdd(s2, 0.999999f, 1e-7f); s3 = MathF.FusedMultiplyAdd(s3, 0.999999f, 1e-7f);
            s4 = MathF.FusedMultiplyAdd(s4, 0.999999f, 1e-7f); s5 = MathF.FusedMultiplyAdd(s5, 0.999999f, 1e-7f);
            s6 = MathF.FusedMultiplyAdd(s6, 0.999999f, 1e-7f); s7 = MathF.FusedMultiplyAdd(s7, 0.999999f, 1e-7f);
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }
}
