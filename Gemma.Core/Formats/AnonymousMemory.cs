using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

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

    /// <summary>
    /// Reads <paramref name="length"/> bytes of <paramref name="file"/> at <paramref name="offset"/> into a new block;
    /// free it with <see cref="Free"/>. Read with <c>pread</c>, not copied from a mapping, so the file's page-cache pages
    /// never count in this process's RSS (copying from a mapping peaked at twice the file).
    /// </summary>
    public static byte* Read(SafeFileHandle file, long offset, long length, string name)
    {
        long rounded = (length + HugePageBytes - 1) / HugePageBytes * HugePageBytes;
        byte* copy;
        try
        {
            copy = (byte*)NativeMemory.AlignedAlloc((nuint)rounded, HugePageBytes);
        }
        catch (OutOfMemoryException e)
        {
            throw new GemmaException($"{name}: cannot allocate {rounded >> 20} MiB to copy the weights into memory (load them mapped instead).", e);
        }
        try
        {
            if (OperatingSystem.IsLinux()) Advise(copy, rounded, MadvHugePage);
            const int Piece = 64 << 20;
            for (long done = 0; done < length;)
            {
                int n = RandomAccess.Read(file, new Span<byte>(copy + done, (int)Math.Min(Piece, length - done)), offset + done);
                if (n == 0) throw new GemmaException($"{name}: the file ended after {done} of {length} bytes while copying it into memory.");
                done += n;
            }
            return copy;
        }
        catch
        {
            NativeMemory.AlignedFree(copy);
            throw;
        }
    }

    /// <summary>Releases a block returned by <see cref="Read"/>.</summary>
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
