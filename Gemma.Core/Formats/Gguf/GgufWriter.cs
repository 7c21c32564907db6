using Gemma.Kernels;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// Produces the bytes of one tensor while a <see cref="GgufWriter"/> writes the file: write exactly the tensor's
/// byte size to <paramref name="destination"/> (more is refused, less is an error after the call returns).
/// </summary>
internal delegate void GgufTensorDataSource(Stream destination, CancellationToken cancellationToken);

/// <summary>
/// Writes GGUF version 3 files: metadata, tensor infos, then each tensor's data at an aligned offset. Tensors
/// are declared first (name, type, ggml-order dimensions, and where the bytes come from) and their data is
/// streamed at <see cref="Write"/> time — from memory, or from a callback that can produce a 5 GB model slice by
/// slice (e.g. quantizing rows read from a memory-mapped source).
/// <para>
/// <see cref="Write"/> writes to <c>target + ".tmp-&lt;random&gt;"</c> in the same directory, flushes it to disk
/// and only then renames it over the target. On any failure or cancellation the temporary file is deleted and
/// the target is left untouched: an interrupted run never leaves a half-written file under the target name.
/// </para>
/// </summary>
internal sealed class GgufWriter
{
    /// <summary>Longest tensor name llama.cpp accepts (GGML_MAX_NAME − 1 bytes).</summary>
    public const int MaxTensorNameBytes = 63;

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<Entry> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private long _dataSize;

    private sealed record Entry(string Name, GgmlType Type, long[] Dims, long Bytes, long Offset,
        ReadOnlyMemory<byte> Memory, GgufTensorDataSource? Source);

    /// <summary>Creates a writer; a non-default alignment is recorded as <c>general.alignment</c> (uint32).</summary>
    /// <param name="alignment">Data alignment: a power of two, at least 8 (the spec asks for a multiple of 8).</param>
    public GgufWriter(uint alignment = GgufParser.DefaultAlignment)
    {
        if (alignment < 8 || !BitOperations.IsPow2(alignment))
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "Alignment must be a power of two, at least 8.");
        Alignment = alignment;
        if (alignment != GgufParser.DefaultAlignment) Add(GgufParser.AlignmentKey, GgufValue.FromUInt32(alignment));
    }

    /// <summary>Data alignment of the file.</summary>
    public uint Alignment { get; }

    /// <summary>Adds a metadata pair (written in the order added). <c>general.alignment</c> comes from the constructor.</summary>
    public void AddMetadata(string key, GgufValue value)
    {
        if (key == GgufParser.AlignmentKey)
            throw new ArgumentException($"Set {GgufParser.AlignmentKey} through the GgufWriter constructor.", nameof(key));
        Add(key, value);
    }

    private void Add(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (StrictUtf8.GetByteCount(key) > GgufParser.MaxKeyBytes)
            throw new ArgumentException($"Metadata key is longer than {GgufParser.MaxKeyBytes} bytes.", nameof(key));
        ValidateStrings(value, depth: 0);
        if (!_keys.Add(key)) throw new ArgumentException($"Metadata key '{key}' was already added.", nameof(key));
        _metadata.Add((key, value));
    }

    private static void ValidateStrings(GgufValue value, int depth)
    {
        if (depth >= GgufParser.MaxArrayDepth) throw new ArgumentException($"Arrays nest deeper than {GgufParser.MaxArrayDepth} levels.");
        switch (value.RawValue)
        {
            case string s: StrictUtf8.GetByteCount(s); break; // throws on lone surrogates
            case string[] a: foreach (string s in a) StrictUtf8.GetByteCount(s); break;
            case GgufValue[] nested: foreach (GgufValue v in nested) ValidateStrings(v, depth + 1); break;
        }
    }

    /// <summary>Adds a tensor whose bytes are in memory (copied to the file at <see cref="Write"/> time, not now).</summary>
    /// <param name="name">Unique name, at most 63 UTF-8 bytes.</param>
    /// <param name="type">Element encoding of <paramref name="data"/>.</param>
    /// <param name="ggmlDimensions">1 to 4 dimensions, innermost first (a PyTorch shape reversed).</param>
    /// <param name="data">Exactly the tensor's byte size.</param>
    public void AddTensor(string name, GgmlType type, ReadOnlySpan<long> ggmlDimensions, ReadOnlyMemory<byte> data)
    {
        long bytes = ValidateTensor(name, type, ggmlDimensions);
        if (data.Length != bytes)
            throw new ArgumentException($"Tensor '{name}' ({type} [{string.Join(", ", ggmlDimensions.ToArray())}]) needs {bytes} bytes, got {data.Length}.", nameof(data));
        Append(name, type, ggmlDimensions, bytes, data, null);
    }

    /// <summary>Adds a tensor whose bytes <paramref name="source"/> writes during <see cref="Write"/>.</summary>
    public void AddTensor(string name, GgmlType type, ReadOnlySpan<long> ggmlDimensions, GgufTensorDataSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        long bytes = ValidateTensor(name, type, ggmlDimensions);
        Append(name, type, ggmlDimensions, bytes, default, source);
    }

    private long ValidateTensor(string name, GgmlType type, ReadOnlySpan<long> dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (StrictUtf8.GetByteCount(name) > MaxTensorNameBytes)
            throw new ArgumentException($"Tensor name '{name}' is longer than {MaxTensorNameBytes} bytes.", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        ElementTraits traits = ElementTypes.Of(type); // unknown ids: ArgumentOutOfRangeException
        int blockSize = traits.BlockSize;
        if (dims.Length is 0 or > GgufParser.MaxDims)
            throw new ArgumentException($"Tensor '{name}' has {dims.Length} dimensions (1 to {GgufParser.MaxDims}).", nameof(dims));
        long elements = 1;
        foreach (long d in dims)
        {
            if (d < 1 || d > int.MaxValue) throw new ArgumentException($"Tensor '{name}' has dimension {d} (1 to {int.MaxValue}).", nameof(dims));
            elements = checked(elements * d);
        }
        if (dims[0] % blockSize != 0)
            throw new ArgumentException($"Tensor '{name}': {type} rows need a multiple of {blockSize} elements, ne[0] is {dims[0]}.", nameof(dims));
        return traits.ByteSize(elements);
    }

    private void Append(string name, GgmlType type, ReadOnlySpan<long> dims, long bytes, ReadOnlyMemory<byte> memory, GgufTensorDataSource? source)
    {
        long offset = AlignUp(_dataSize, Alignment);
        _tensors.Add(new Entry(name, type, dims.ToArray(), bytes, offset, memory, source));
        _names.Add(name);
        _dataSize = checked(offset + bytes);
    }

    private static long AlignUp(long position, uint alignment) => checked(position + (alignment - position % alignment) % alignment);

    /// <summary>
    /// Writes the file to a temporary name beside <paramref name="path"/>, flushes it, then renames it over
    /// <paramref name="path"/>. I/O failures and tensor sources that write the wrong number of bytes are
    /// <see cref="GemmaException"/>s; cancellation is <see cref="OperationCanceledException"/>; an exception thrown
    /// by a tensor source propagates unchanged. In every failure case the temporary file is deleted.
    /// </summary>
    public void Write(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string name = Path.GetFileName(path);
        string temp = $"{path}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                WriteTo(stream, name, cancellationToken);
                stream.Flush(flushToDisk: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException or UnauthorizedAccessException)
                throw new GemmaException($"{name}: writing the GGUF file failed: {e.Message}", e);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private void WriteTo(Stream stream, string fileName, CancellationToken ct)
    {
        var w = new BinaryWriter(stream, StrictUtf8, leaveOpen: true); // BinaryWriter is always little-endian
        w.Write(0x46554747u); // "GGUF"
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach ((string key, GgufValue value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        foreach (Entry t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (long d in t.Dims) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)t.Offset);
        }
        w.Flush();
        long dataStart = AlignUp(stream.Position, Alignment);
        Pad(stream, dataStart - stream.Position);

        foreach (Entry t in _tensors)
        {
            ct.ThrowIfCancellationRequested();
            Pad(stream, dataStart + t.Offset - stream.Position);
            if (t.Source is null)
            {
                stream.Write(t.Memory.Span);
                continue;
            }
            var bounded = new BoundedWriteStream(stream, t.Bytes, fileName, t.Name);
            t.Source(bounded, ct);
            if (bounded.Written != t.Bytes)
                throw new GemmaException($"{fileName}: the data source of tensor '{t.Name}' wrote {bounded.Written} bytes, expected {t.Bytes}");
        }
    }

    private static void Pad(Stream stream, long count)
    {
        Span<byte> zeros = stackalloc byte[256];
        zeros.Clear();
        while (count > 0)
        {
            int n = (int)Math.Min(count, zeros.Length);
            stream.Write(zeros[..n]);
            count -= n;
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = StrictUtf8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        switch (value.RawValue)
        {
            case byte v: w.Write(v); break;
            case sbyte v: w.Write(v); break;
            case ushort v: w.Write(v); break;
            case short v: w.Write(v); break;
            case uint v: w.Write(v); break;
            case int v: w.Write(v); break;
            case float v: w.Write(v); break;
            case bool v: w.Write((byte)(v ? 1 : 0)); break;
            case string v: WriteString(w, v); break;
            case ulong v: w.Write(v); break;
            case long v: w.Write(v); break;
            case double v: w.Write(v); break;
            case Array a: WriteArray(w, value.ElementType, a); break;
            default: throw new InvalidOperationException($"Unexpected metadata value {value.RawValue.GetType()}.");
        }
    }

    private static void WriteArray(BinaryWriter w, GgufValueType elementType, Array items)
    {
        w.Write((uint)elementType);
        w.Write((ulong)items.Length);
        switch (items)
        {
            case byte[] a: w.Write(a); break;
            case sbyte[] a: foreach (sbyte x in a) w.Write(x); break;
            case ushort[] a: foreach (ushort x in a) w.Write(x); break;
            case short[] a: foreach (short x in a) w.Write(x); break;
            case uint[] a: foreach (uint x in a) w.Write(x); break;
            case int[] a: foreach (int x in a) w.Write(x); break;
            case float[] a: foreach (float x in a) w.Write(x); break;
            case bool[] a: foreach (bool x in a) w.Write((byte)(x ? 1 : 0)); break;
            case string[] a: foreach (string x in a) WriteString(w, x); break;
            case ulong[] a: foreach (ulong x in a) w.Write(x); break;
            case long[] a: foreach (long x in a) w.Write(x); break;
            case double[] a: foreach (double x in a) w.Write(x); break;
            case GgufValue[] a: foreach (GgufValue x in a) WriteArray(w, x.ElementType, (Array)x.RawValue); break;
            default: throw new InvalidOperationException($"Unexpected metadata array {items.GetType()}.");
        }
    }
}
