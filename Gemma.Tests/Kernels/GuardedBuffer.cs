using System.Runtime.InteropServices;

namespace Gemma.Tests.Kernels;

/// <summary>
/// Native memory for kernel tests whose last element ends exactly where an inaccessible guard page starts (Linux:
/// mmap + mprotect PROT_NONE), so a kernel that reads or writes one element past the end crashes the test run.
/// The bytes in front of the data are filled with a sentinel and checked by <see cref="AssertFrontIntact"/>.
/// On other systems it falls back to a sentinel after the data as well.
/// </summary>
internal sealed unsafe class GuardedBuffer<T> : IDisposable where T : unmanaged
{
    private const int Page = 4096;
    private const byte Sentinel = 0xA5;
    private readonly byte* _base;
    private readonly nuint _mapped;
    private readonly bool _mmap;
    private readonly int _backSentinel;

    public GuardedBuffer(long length)
    {
        Length = length;
        long bytes = length * sizeof(T);
        if (OperatingSystem.IsLinux())
        {
            long dataPages = (bytes + Page - 1) / Page + 1; // + 1: at least part of a page of front sentinel
            _mapped = (nuint)((dataPages + 1) * Page);
            _base = (byte*)Libc.mmap(null, _mapped, 3 /* R|W */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
            if (_base == (byte*)-1 || _base == null) throw new InvalidOperationException("mmap failed");
            if (Libc.mprotect(_base + dataPages * Page, Page, 0 /* PROT_NONE */) != 0) throw new InvalidOperationException("mprotect failed");
            Pointer = (T*)(_base + dataPages * Page - bytes);
            _mmap = true;
        }
        else
        {
            _backSentinel = 256;
            _mapped = (nuint)(bytes + 2 * 256);
            _base = (byte*)NativeMemory.Alloc(_mapped);
            Pointer = (T*)(_base + 256);
        }
        new Span<byte>(_base, (int)((byte*)Pointer - _base)).Fill(Sentinel);
        if (_backSentinel > 0) new Span<byte>((byte*)Pointer + bytes, _backSentinel).Fill(Sentinel);
        Span.Clear();
    }

    public T* Pointer { get; }
    public long Length { get; }
    public Span<T> Span => new(Pointer, checked((int)Length));

    /// <summary>Fails if anything was written in front of (or, without a guard page, behind) the data.</summary>
    public void AssertFrontIntact()
    {
        var front = new ReadOnlySpan<byte>(_base, (int)((byte*)Pointer - _base));
        NUnit.Framework.Assert.That(front.IndexOfAnyExcept(Sentinel), NUnit.Framework.Is.EqualTo(-1), "write before the buffer");
        if (_backSentinel > 0)
        {
            var back = new ReadOnlySpan<byte>((byte*)Pointer + Length * sizeof(T), _backSentinel);
            NUnit.Framework.Assert.That(back.IndexOfAnyExcept(Sentinel), NUnit.Framework.Is.EqualTo(-1), "write after the buffer");
        }
    }

    public void Dispose()
    {
        if (_mmap) Libc.munmap(_base, _mapped);
        else NativeMemory.Free(_base);
    }

}

internal static unsafe class Libc
{
    [DllImport("libc", SetLastError = true)] public static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] public static extern int mprotect(void* addr, nuint length, int prot);
    [DllImport("libc", SetLastError = true)] public static extern int munmap(void* addr, nuint length);
}
