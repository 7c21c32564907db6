using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// A GGUF (version 2 or 3, little-endian) file opened through a read-only memory mapping. The header, metadata
/// and tensor infos are parsed and validated at <see cref="Open(string)"/>; tensor data is never copied — each
/// <see cref="GgufTensorInfo"/> points into the mapping, valid until <see cref="Dispose"/>.
/// <para>
/// The file is untrusted input: every read is bounds-checked before it happens, every count and length is
/// checked against the bytes that remain before anything is allocated for it, and every problem is a
/// <see cref="GemmaException"/> naming the file and what is wrong. The file is opened with
/// <see cref="FileShare.Read"/> and never written. (If another process truncates the file while it is mapped,
/// reading tensor data can still fault; nothing at this level can prevent that.)
/// </para>
/// </summary>
internal sealed unsafe class GgufFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private byte* _base;
    private bool _ownsNativeCopy; // FromMemory: _base is a NativeMemory block to free
    private bool _anonymousCopy;  // Open with copy: _base is an AnonymousMemory block, the mapping is released

    private GgufFile(string path, long length)
    {
        Path = path;
        FileName = System.IO.Path.GetFileName(path);
        FileLength = length;
        _byName = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
        Metadata = null!;
        Tensors = [];
    }

    private GgufFile(string path, long offset, long length, FileStream stream, bool copy) : this(path, length)
    {
        if (copy)
        {
            // The opt-in copy (GemmaModelOptions.MemoryMap = false): read the region into private memory, no mapping.
            _base = AnonymousMemory.Read(stream.SafeFileHandle, offset, length, path);
            _anonymousCopy = true;
            stream.Dispose();
            return;
        }
        // Read-only mapping of [offset, offset + length) of the file (all of it, or a GGUF inside a larger file such
        // as a bundled executable); the stream is owned (and closed) by the map. The view API rounds the offset
        // down to a page and reports the difference in PointerOffset.
        _map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
            HandleInheritability.None, leaveOpen: false);
        _view = _map.CreateViewAccessor(offset, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    /// <summary>Path the file was opened from.</summary>
    public string Path { get; }

    /// <summary>File name (no directory), as used in error messages.</summary>
    public string FileName { get; private init; }

    /// <summary>Size of the GGUF in bytes (the whole file, or the region it occupies inside a larger file).</summary>
    public long FileLength { get; }

    /// <summary>GGUF format version (2 or 3).</summary>
    public uint Version { get; private set; }

    /// <summary>Data alignment: <c>general.alignment</c>, or 32 when absent.</summary>
    public uint Alignment { get; private set; }

    /// <summary>Absolute file offset of the tensor data section (end of the tensor infos, aligned).</summary>
    public long DataOffset { get; private set; }

    /// <summary>All metadata key/value pairs, with typed accessors.</summary>
    public GgufMetadata Metadata { get; private set; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; }

    /// <summary><c>general.architecture</c> (e.g. <c>gemma2</c>), or null when absent.</summary>
    public string? Architecture => Metadata.TryGetString("general.architecture", out string? a) ? a : null;

    internal byte* BasePointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            return _base;
        }
    }

    /// <summary>
    /// Opens, maps and validates <paramref name="path"/>. Any problem with the file — missing, unreadable,
    /// truncated, malformed — is a <see cref="GemmaException"/>.
    /// </summary>
    public static GgufFile Open(string path) => Open(path, 0, null, System.IO.Path.GetFileName(path));

    /// <summary>
    /// <see cref="Open(string)"/>, or with <paramref name="copy"/> a private copy in anonymous (huge-page) memory
    /// (<see cref="AnonymousMemory"/>) that the tensors point into, the file unmapped.
    /// </summary>
    public static GgufFile Open(string path, bool copy) => Open(path, 0, null, System.IO.Path.GetFileName(path), copy);

    /// <summary>
    /// Opens the GGUF occupying <paramref name="length"/> bytes at <paramref name="offset"/> of <paramref name="path"/>
    /// (the whole file when <paramref name="length"/> is null). Only that region is mapped, and every offset in it —
    /// tensor data included — is validated against the region, not the file: nothing outside it is ever read.
    /// Offsets reported by the file (<see cref="DataOffset"/>, <see cref="GgufTensorInfo.FileOffset"/>) are relative to
    /// the region's start. <paramref name="name"/> names the GGUF in error messages.
    /// </summary>
    internal static GgufFile Open(string path, long offset, long? length, string name, bool copy = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new GemmaException($"{name}: cannot open GGUF file: {e.Message}", e);
        }

        GgufFile? file = null;
        try
        {
            long fileLength = stream.Length;
            long regionLength = length ?? fileLength - offset;
            if (offset < 0 || regionLength < 0 || offset > fileLength || regionLength > fileLength - offset)
                throw new GemmaException($"{name}: the GGUF region [offset {offset}, {regionLength} bytes] lies outside the file ({fileLength} bytes)");
            if (regionLength < GgufParser.HeaderBytes)
                throw new GemmaException($"{name}: file is {regionLength} bytes, too short for a GGUF header ({GgufParser.HeaderBytes} bytes)");
            file = new GgufFile(path, offset, regionLength, stream, copy) { FileName = name };
            file.Load(GgufParser.Parse(file._base, regionLength, name, file));
            return file;
        }
        catch (Exception e)
        {
            file?.Dispose();
            stream.Dispose();
            if (e is GemmaException) throw;
            if (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
                throw new GemmaException($"{name}: cannot map GGUF file: {e.Message}", e);
            throw;
        }
    }

    /// <summary>
    /// Parses the GGUF at <paramref name="data"/> in place (no copy): memory that outlives the returned file, such as
    /// a manifest resource of a loaded assembly. Validation is that of <see cref="Open(string)"/>, bounded to
    /// <paramref name="length"/> bytes; <see cref="Dispose"/> releases nothing.
    /// </summary>
    internal static GgufFile FromUnmanagedMemory(byte* data, long length, string name)
    {
        if (length < GgufParser.HeaderBytes)
            throw new GemmaException($"{name}: file is {length} bytes, too short for a GGUF header ({GgufParser.HeaderBytes} bytes)");
        var file = new GgufFile(name, length) { _base = data };
        file.Load(GgufParser.Parse(data, length, name, file));
        return file;
    }

    /// <summary>
    /// Parses a copy of <paramref name="bytes"/> held in native memory, with exactly the validation of
    /// <see cref="Open(string)"/> (used by tests to run many cases without file I/O).
    /// </summary>
    internal static GgufFile FromMemory(ReadOnlySpan<byte> bytes, string fileName)
    {
        if (bytes.Length < GgufParser.HeaderBytes)
            throw new GemmaException($"{fileName}: file is {bytes.Length} bytes, too short for a GGUF header ({GgufParser.HeaderBytes} bytes)");
        var file = new GgufFile(fileName, bytes.Length);
        file._base = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes.Length);
        file._ownsNativeCopy = true;
        bytes.CopyTo(new Span<byte>(file._base, bytes.Length));
        try
        {
            file.Load(GgufParser.Parse(file._base, bytes.Length, fileName, file));
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void Load(GgufParser parsed)
    {
        Version = parsed.Version;
        Alignment = parsed.Alignment;
        DataOffset = parsed.DataOffset;
        Metadata = parsed.Metadata;
        Tensors = parsed.Tensors.AsReadOnly();
        foreach (GgufTensorInfo t in parsed.Tensors) _byName.Add(t.Name, t);
    }

    /// <summary>The tensor named <paramref name="name"/>; <see cref="GemmaException"/> if there is none.</summary>
    public GgufTensorInfo GetTensor(string name) =>
        TryGetTensor(name, out GgufTensorInfo? t) ? t : throw new GemmaException($"{FileName}: tensor '{name}' is missing");

    /// <summary>The tensor named <paramref name="name"/>, or false.</summary>
    public bool TryGetTensor(string name, [MaybeNullWhen(false)] out GgufTensorInfo tensor) => _byName.TryGetValue(name, out tensor);

    /// <summary>Unmaps the file. Pointers and spans obtained from its tensors become invalid.</summary>
    public void Dispose()
    {
        if (_base != null)
        {
            if (_ownsNativeCopy) System.Runtime.InteropServices.NativeMemory.Free(_base);
            else if (_anonymousCopy) AnonymousMemory.Free(_base);
            else _view?.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
