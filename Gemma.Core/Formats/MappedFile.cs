using System.IO.MemoryMappedFiles;

namespace Gemma.Core.Formats;

/// <summary>
/// A whole file mapped read-only into memory. The file is opened with <see cref="FileAccess.Read"/> and
/// <see cref="FileShare.Read"/>: model files are never written. Every pointer handed out is checked against
/// <see cref="Length"/> here, once, so that parsers and kernels never read outside the mapping.
/// With <c>copy</c> the file is read into anonymous memory (<see cref="AnonymousMemory"/>) instead of mapped.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;          // null for a copy
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;                               // into the view, or an AnonymousMemory block

    private MappedFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
        _base += view.PointerOffset;
        Length = length;
    }

    private MappedFile(string path, byte* copy, long length)
    {
        Path = path;
        _base = copy;
        Length = length;
    }

    /// <summary>The file's path (used in error messages).</summary>
    public string Path { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    /// <summary>
    /// Maps <paramref name="path"/> read-only (and with <paramref name="copy"/> copies it into anonymous memory); a
    /// missing, unreadable or empty file is a <see cref="GemmaException"/>.
    /// </summary>
    public static MappedFile Open(string path, bool copy = false)
    {
        FileStream? stream = null;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
            long length = stream.Length;
            if (length == 0) throw new GemmaException($"{path}: the file is empty.");
            if (copy) return new MappedFile(path, AnonymousMemory.Read(stream.SafeFileHandle, 0, length, path), length);
            var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            stream = null; // owned by the map now
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new MappedFile(path, map, view, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new GemmaException($"{path}: cannot open the file ({e.Message}).", e);
        }
        finally
        {
            stream?.Dispose();
        }
    }

    /// <summary>Pointer to <paramref name="length"/> bytes at <paramref name="offset"/>, after checking the range lies inside the file.</summary>
    public byte* Pointer(long offset, long length, string what)
    {
        if (offset < 0 || length < 0 || offset > Length || length > Length - offset)
            throw new GemmaException($"{Path}: {what} [offset {offset}, {length} bytes] lies outside the file ({Length} bytes).");
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + offset;
    }

    /// <summary>The bytes of a checked range as a span (ranges over 2 GiB must use <see cref="Pointer"/>).</summary>
    public ReadOnlySpan<byte> Span(long offset, int length, string what) => new(Pointer(offset, length, what), length);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_base == null) return;
        if (_view == null) AnonymousMemory.Free(_base);
        else
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map!.Dispose();
        }
        _base = null;
    }
}
