using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// Software prefetch hints (x86 <c>prefetcht0</c>/<c>prefetcht1</c>; no-ops elsewhere). A hint never faults, so an
/// address past the end of a buffer is harmless.
/// </summary>
internal static unsafe class Prefetch
{
    /// <summary>Bytes per cache line assumed by the prefetch loops.</summary>
    public const int LineBytes = 64;

    /// <summary>
    /// Asks for the cache lines of [<paramref name="p"/>, <paramref name="p"/> + <paramref name="bytes"/>) in L2 (and
    /// below), not L1: an access pattern that walks a block column strip by column strip has too many lines in flight
    /// for L1's sets, and <c>prefetcht0</c> measured slower than none there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ToL2(byte* p, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (int o = 0; o < bytes; o += LineBytes) Sse.Prefetch1(p + o);
    }

    /// <summary>
    /// Asks for the cache lines of [<paramref name="p"/>, <paramref name="p"/> + <paramref name="bytes"/>) in L1: for a
    /// stream read so slowly (compute-bound batches) that the hardware prefetchers do not run far enough ahead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ToL1(byte* p, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (int o = 0; o < bytes; o += LineBytes) Sse.Prefetch0(p + o);
    }
}
