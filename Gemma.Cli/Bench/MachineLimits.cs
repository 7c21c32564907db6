using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
    private static bool HasFma128 => Vector128.IsHardwareAccelerated && Ops128.HasFma;

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
        if (Vector512.IsHardwareAccelerated) return Sum<Ops512, Vector512<float>>(p, n);
        if (Vector256.IsHardwareAccelerated) return Sum<Ops256, Vector256<float>>(p, n);
        if (Vector128.IsHardwareAccelerated) return Sum<Ops128, Vector128<float>>(p, n);
        long i = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; i + 4 <= n; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
        for (; i < n; i++) s0 += p[i];
        return (s0 + s1) + (s2 + s3);
    }

    /// <summary>The read loop on one vector width: 8 independent vector accumulators, so the adds never wait on each other.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum<TOps, TV>(float* p, long n) where TOps : IVectorOps<TV> where TV : struct
    {
        int L = TOps.Lanes;
        long i = 0;
        TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero, a4 = TOps.Zero, a5 = TOps.Zero, a6 = TOps.Zero, a7 = TOps.Zero;
        for (; i + 8L * L <= n; i += 8L * L)
        {
            a0 = TOps.Add(a0, TOps.Load(p + i)); a1 = TOps.Add(a1, TOps.Load(p + i + L));
            a2 = TOps.Add(a2, TOps.Load(p + i + 2 * L)); a3 = TOps.Add(a3, TOps.Load(p + i + 3 * L));
            a4 = TOps.Add(a4, TOps.Load(p + i + 4 * L)); a5 = TOps.Add(a5, TOps.Load(p + i + 5 * L));
            a6 = TOps.Add(a6, TOps.Load(p + i + 6 * L)); a7 = TOps.Add(a7, TOps.Load(p + i + 7 * L));
        }
        float s = TOps.Sum(TOps.Add(TOps.Add(TOps.Add(a0, a1), TOps.Add(a2, a3)), TOps.Add(TOps.Add(a4, a5), TOps.Add(a6, a7))));
        for (; i < n; i++) s += p[i];
        return s;
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
        if (Vector256.IsHardwareAccelerated) return FmaChains12<Ops256, Vector256<float>>(iterations, seed);
        // ARM64: 12 chains cover 2 FMA pipes × 4 cycles of latency (Cortex-A76 / Neoverse N1) with room to spare.
        if (HasFma128) return FmaChains12<Ops128, Vector128<float>>(iterations, seed);
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

    /// <summary>12 chains of <see cref="FmaChains"/> on one vector width: as many as 16 vector registers hold beside a and b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FmaChains12<TOps, TV>(long iterations, float seed) where TOps : IVectorOps<TV> where TV : struct
    {
        TV a = TOps.Create(0.999999f), b = TOps.Create(1e-7f);
        TV c0 = TOps.Create(seed), c1 = TOps.Add(c0, b), c2 = TOps.Add(c1, b), c3 = TOps.Add(c2, b), c4 = TOps.Add(c3, b),
            c5 = TOps.Add(c4, b), c6 = TOps.Add(c5, b), c7 = TOps.Add(c6, b), c8 = TOps.Add(c7, b), c9 = TOps.Add(c8, b),
            c10 = TOps.Add(c9, b), c11 = TOps.Add(c10, b);
        for (long i = 0; i < iterations; i++)
        {
            c0 = TOps.Fma(c0, a, b); c1 = TOps.Fma(c1, a, b); c2 = TOps.Fma(c2, a, b); c3 = TOps.Fma(c3, a, b);
            c4 = TOps.Fma(c4, a, b); c5 = TOps.Fma(c5, a, b); c6 = TOps.Fma(c6, a, b); c7 = TOps.Fma(c7, a, b);
            c8 = TOps.Fma(c8, a, b); c9 = TOps.Fma(c9, a, b); c10 = TOps.Fma(c10, a, b); c11 = TOps.Fma(c11, a, b);
        }
        return TOps.Sum(TOps.Add(TOps.Add(TOps.Add(TOps.Add(c0, c1), TOps.Add(c2, c3)), TOps.Add(TOps.Add(c4, c5), TOps.Add(c6, c7))),
            TOps.Add(TOps.Add(c8, c9), TOps.Add(c10, c11))));
    }
}
