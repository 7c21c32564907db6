using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// A forward-only reader over the mapped file bytes. Every read checks, before touching memory, that the
/// bytes it needs lie inside the file; every length or count read from the file is checked against the bytes
/// that remain before anything is allocated for it. Failures are <see cref="GemmaException"/>s that name the
/// file, the field and the offset.
/// </summary>
internal sealed unsafe class GgufCursor
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte* _base;

    public GgufCursor(byte* data, long length, string fileName)
    {
        _base = data;
        Length = length;
        FileName = fileName;
    }

    // What is being read, for error messages only: the strings are formatted when an error is raised, so a
    // file of many small items costs no message strings (allocation stays proportional to what is parsed).
    private string _kind = "";
    private string? _name;
    private long _index = -1;

    /// <summary>Sets the item being read: e.g. ("metadata key", "general.name") or ("tensor", null, 3).</summary>
    public void Subject(string kind, string? name, long index = -1)
    {
        _kind = kind;
        _name = name;
        _index = index;
    }

    /// <summary>"metadata key 'k' value", "tensor #3 name", or just <paramref name="what"/>.</summary>
    public string Describe(string what) =>
        _name is not null ? $"{_kind} '{_name}' {what}" : _index >= 0 ? $"{_kind} #{_index} {what}" : what;

    public string FileName { get; }
    public long Length { get; }
    public long Position { get; private set; }
    public long Remaining => Length - Position;

    /// <summary>Throws unless <paramref name="count"/> bytes can be read at the current position.</summary>
    public void Need(long count, string what)
    {
        if (count < 0 || count > Remaining)
            throw new GemmaException(
                $"{FileName}: {Describe(what)} at offset {Position} needs {count} bytes, but the file ends at {Length} ({Remaining} bytes remain)");
    }

    private ReadOnlySpan<byte> Take(int count, string what)
    {
        Need(count, what);
        var span = new ReadOnlySpan<byte>(_base + Position, count);
        Position += count;
        return span;
    }

    public byte U8(string what) => Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float F32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double F64(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>
    /// A GGUF string: uint64 byte length, then UTF-8. The length is checked against the remaining bytes before
    /// decoding; invalid UTF-8 is rejected (not replaced), so a name or token can never silently change.
    /// </summary>
    public string String(string what, long maxBytes = long.MaxValue)
    {
        long at = Position;
        ulong length = U64(what); // the length prefix
        if (length > (ulong)Remaining)
            throw new GemmaException(
                $"{FileName}: {Describe(what)} at offset {at} claims {length} bytes, but only {Remaining} bytes remain in the file ({Length} bytes)");
        if ((long)length > maxBytes)
            throw new GemmaException($"{FileName}: {Describe(what)} at offset {at} is {length} bytes long, the limit is {maxBytes}");
        if (length == 0) return string.Empty;
        if (length > int.MaxValue)
            throw new GemmaException($"{FileName}: {Describe(what)} at offset {at} is {length} bytes long, too long for a string");
        ReadOnlySpan<byte> bytes = Take((int)length, what);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new GemmaException($"{FileName}: {Describe(what)} at offset {at} is not valid UTF-8", e);
        }
    }

    /// <summary>
    /// Reads <paramref name="count"/> fixed-size little-endian elements into a new array. The caller has already
    /// checked <c>count × sizeof(T)</c> against the remaining bytes; this re-checks before the copy.
    /// </summary>
    public T[] Array<T>(int count, string what) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian && sizeof(T) > 1)
            throw new PlatformNotSupportedException("GGUF reading needs a little-endian machine.");
        long bytes = (long)count * sizeof(T);
        Need(bytes, what);
        var result = new T[count];
        new ReadOnlySpan<byte>(_base + Position, (int)bytes).CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        Position += bytes;
        return result;
    }

    /// <summary>Moves to <paramref name="offset"/> (which must lie inside the file).</summary>
    public void Seek(long offset)
    {
        if (offset < 0 || offset > Length) throw new GemmaException($"{FileName}: offset {offset} is outside the file ({Length} bytes)");
        Position = offset;
    }
}
