using System.Runtime.InteropServices;

namespace Gemma.Benchmarks;

/// <summary>
/// CPU time of the calling thread (Linux <c>CLOCK_THREAD_CPUTIME_ID</c>): on a shared, overloaded machine wall time
/// includes the time other processes held the core; this is the work itself. 0 elsewhere.
/// </summary>
internal static class ThreadCpu
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds, Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    public static long Nanoseconds()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        ClockGetTime(3, out Timespec t); // CLOCK_THREAD_CPUTIME_ID
        return t.Seconds * 1_000_000_000 + t.Nanoseconds;
    }
}
