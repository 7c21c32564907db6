using System.Runtime.InteropServices;

namespace Gemma.Core.Model;

/// <summary>64-byte aligned unmanaged memory (tensors converted at load, KV caches too large for an array).</summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    public NativeBuffer(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        Length = bytes;
        GC.AddMemoryPressure(Math.Max(bytes, 1));
    }

    public byte* Pointer { get; private set; }
    public long Length { get; }

    public Span<T> AsSpan<T>() where T : unmanaged => new(Pointer, checked((int)(Length / sizeof(T))));

    public void Dispose()
    {
        if (Pointer == null) return;
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
        GC.RemoveMemoryPressure(Math.Max(Length, 1));
    }
}
