using System.Runtime.InteropServices;

namespace Gemma.Core.Formats;

/// <summary>
/// The opt-in alternative to reading weights from the file mapping (<see cref="GemmaModelOptions.MemoryMap"/> = false,
/// like llama.cpp's <c>--no-mmap</c>): a private copy in anonymous memory aligned to 2 MiB, which on Linux is marked
/// <c>madvise(MADV_HUGEPAGE)</c> before it is first touched, so that with transparent huge pages in <c>madvise</c> or
/// <c>always</c> mode (<c>/sys/kernel/mm/transparent_hugepage/enabled</c>) the kernel backs it with 2 MiB pages: one
/// TLB entry per 2 MiB of weights instead of 512. Elsewhere (or if the advice is refused) it is a plain copy.
/// The cost: the copy's pages are the process's own (RSS = file size, not shared with other processes through the
/// page cache), and load reads the whole file up front.
/// </summary>
internal static unsafe partial class AnonymousMemory
{
    /// <summary>Alignment and rounding of the copies: one x86-64 / ARM64 transparent huge page.</summary>
    public const int HugePageBytes = 2 << 20;

    /// <summary>A copy of <paramref name="length"/> bytes at <paramref name="source"/>; free it with <see cref="Free"/>.</summary>
    public static byte* Copy(byte* source, long length)
    {
        long rounded = (length + HugePageBytes - 1) / HugePageBytes * HugePageBytes;
        byte* copy;
        try
        {
            copy = (byte*)NativeMemory.AlignedAlloc((nuint)rounded, HugePageBytes);
        }
        catch (OutOfMemoryException e)
        {
            throw new GemmaException($"Cannot allocate {rounded >> 20} MiB to copy the weights into memory (load them mapped instead).", e);
        }
        if (OperatingSystem.IsLinux()) Advise(copy, rounded, MadvHugePage);
        // Copy in 64 MiB pieces (Buffer.MemoryCopy takes longs, but smaller pieces keep the page faults steady).
        const long Piece = 64L << 20;
        for (long done = 0; done < length; done += Piece)
        {
            long n = Math.Min(Piece, length - done);
            Buffer.MemoryCopy(source + done, copy + done, n, n);
        }
        return copy;
    }

    /// <summary>Releases a block returned by <see cref="Copy"/>.</summary>
    public static void Free(byte* block) => NativeMemory.AlignedFree(block);

    private const int MadvHugePage = 14; // <sys/mman.h> (Linux, all architectures)

    /// <summary>madvise; a refusal (e.g. THP compiled out: EINVAL) only means no huge pages, so it is ignored.</summary>
    private static void Advise(byte* address, long length, int advice)
    {
        try { _ = Madvise(address, (nuint)length, advice); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
