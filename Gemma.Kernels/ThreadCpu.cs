using System.Runtime.InteropServices;

namespace Gemma.Kernels;

/// <summary>
/// CPU time of the calling thread (Linux <c>CLOCK_THREAD_CPUTIME_ID</c>): on a shared, overloaded machine wall time
/// includes the time other processes held the core; this is the work itself. 0 elsewhere. For profilers and
/// benchmarks only (a system call, ≈ 0.1–0.5 µs), never on a hot path that is not being measured.
/// </summary>
internal static unsafe partial class ThreadCpu
{
    private const int ClockThreadCpuTime = 3; // <time.h> CLOCK_THREAD_CPUTIME_ID (Linux, all architectures)

    /// <summary>Nanoseconds of CPU time the calling thread has used (0 where the clock is not available).</summary>
    public static long Nanoseconds()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        long* t = stackalloc long[2]; // struct timespec { time_t tv_sec; long tv_nsec; } on 64-bit Linux
        return ClockGetTime(ClockThreadCpuTime, t) == 0 ? t[0] * 1_000_000_000 + t[1] : 0;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, long* time);
}
