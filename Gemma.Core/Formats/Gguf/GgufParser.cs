using Gemma.Kernels;
using System.Numerics;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// Parses and validates the GGUF header, metadata and tensor infos from mapped bytes.
/// <code>
/// header      : magic "GGUF" (47 47 55 46), uint32 version (2 or 3), uint64 tensor_count, uint64 kv_count
/// kv          : string key, uint32 value_type, value            (kv_count times)
/// tensor info : string name, uint32 n_dims, uint64 ne[n_dims], uint32 ggml_type, uint64 offset (tensor_count times)
/// padding     : 0x00 up to the next multiple of general.alignment (default 32)
/// tensor data : each tensor at data_start + offset, offset a multiple of the alignment
/// string      : uint64 byte length, UTF-8 bytes (no terminator)
/// </code>
/// All integers are little-endian. ne[0] is the innermost (contiguous) dimension — the reverse of PyTorch.
/// </summary>
internal sealed class GgufParser
{
    /// <summary>Smallest possible header: magic, version, two uint64 counts.</summary>
    public const int HeaderBytes = 4 + 4 + 8 + 8;
    /// <summary>Deepest nesting of arrays of arrays accepted.</summary>
    public const int MaxArrayDepth = 8;
    /// <summary>Longest metadata key (spec: at most 65535 bytes).</summary>
    public const int MaxKeyBytes = 65535;
    /// <summary>Most dimensions per tensor (ggml's GGML_MAX_DIMS).</summary>
    public const int MaxDims = 4;
    /// <summary>Alignment when general.alignment is absent.</summary>
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    private const int InitialCapacity = 1024;
    // Smallest encoding of one kv pair: empty key (8), value type (4), a 1-byte value.
    private const int MinKvBytes = 8 + 4 + 1;
    // Smallest tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
    private const int MinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

    private readonly GgufCursor _c;
    private readonly string _file;

    private GgufParser(GgufCursor cursor)
    {
        _c = cursor;
        _file = cursor.FileName;
    }

    public uint Version { get; private set; }
    public uint Alignment { get; private set; } = DefaultAlignment;
    public long DataOffset { get; private set; }
    public GgufMetadata Metadata { get; private set; } = null!;
    public List<GgufTensorInfo> Tensors { get; } = [];

    /// <summary>Parses everything; any failure is a <see cref="GemmaException"/>.</summary>
    public static unsafe GgufParser Parse(byte* data, long length, string fileName, GgufFile? owner)
    {
        var parser = new GgufParser(new GgufCursor(data, length, fileName));
        try
        {
            parser.ParseAll(owner);
        }
        catch (GemmaException) { throw; }
        catch (OverflowException e) { throw new GemmaException($"{fileName}: a size in the file overflows 64 bits", e); }
        catch (ArgumentException e) { throw new GemmaException($"{fileName}: malformed GGUF ({e.Message})", e); }
        return parser;
    }

    private void ParseAll(GgufFile? owner)
    {
        _c.Need(HeaderBytes, "GGUF header");
        uint magic = _c.U32("magic");
        if (magic != 0x46554747) // "GGUF" read little-endian
            throw new GemmaException($"{_file}: not a GGUF file (magic 0x{magic:X8}, expected the bytes 'GGUF')");
        Version = _c.U32("version");
        if (Version is 0x02000000 or 0x03000000)
            throw new GemmaException($"{_file}: big-endian GGUF files are not supported");
        if (Version == 1)
            throw new GemmaException($"{_file}: GGUF version 1 is not supported (32-bit counts); convert to version 3");
        if (Version is not (2 or 3))
            throw new GemmaException($"{_file}: unsupported GGUF version {Version} (supported: 2, 3)");

        ulong tensorCount = _c.U64("tensor_count");
        ulong kvCount = _c.U64("metadata_kv_count");
        if (kvCount > (ulong)(_c.Remaining / MinKvBytes))
            throw new GemmaException(
                $"{_file}: metadata_kv_count {kvCount} is impossible: {kvCount} pairs need at least {MinKvBytes} bytes each, only {_c.Remaining} bytes remain");
        if (tensorCount > (ulong)(_c.Remaining / MinTensorInfoBytes))
            throw new GemmaException(
                $"{_file}: tensor_count {tensorCount} is impossible: each tensor info needs at least {MinTensorInfoBytes} bytes, only {_c.Remaining} bytes remain");

        // Counts only bound the work; collections grow with what is actually parsed (a huge file with a huge
        // claimed count must not reserve gigabytes up front).
        Metadata = new GgufMetadata(_file, (int)Math.Min(kvCount, InitialCapacity));
        for (ulong i = 0; i < kvCount; i++)
        {
            long at = _c.Position;
            _c.Subject("metadata key", null, (long)i);
            string key = _c.String("name", MaxKeyBytes);
            _c.Subject("metadata key", key);
            uint type = _c.U32("value type");
            GgufValue value = ReadValue(type, key, depth: 0);
            if (!Metadata.TryAdd(key, value))
                throw new GemmaException($"{_file}: metadata key '{key}' at offset {at} appears twice");
        }

        if (Metadata.ContainsKey(AlignmentKey))
        {
            uint alignment = Metadata.GetUInt32(AlignmentKey);
            if (alignment == 0 || !BitOperations.IsPow2(alignment))
                throw new GemmaException($"{_file}: {AlignmentKey} = {alignment} is not a nonzero power of two");
            Alignment = alignment;
        }

        if (tensorCount > (ulong)(_c.Remaining / MinTensorInfoBytes))
            throw new GemmaException(
                $"{_file}: tensor_count {tensorCount} is impossible: each tensor info needs at least {MinTensorInfoBytes} bytes, only {_c.Remaining} bytes remain after the metadata");
        int capacity = (int)Math.Min(tensorCount, InitialCapacity);
        var names = new HashSet<string>(capacity, StringComparer.Ordinal);
        var infos = new List<(string Name, GgmlType Type, long[] Dims, long Elements, long Bytes, long Offset)>(capacity);
        for (ulong i = 0; i < tensorCount; i++)
        {
            var info = ReadTensorInfo(i);
            if (!names.Add(info.Name)) throw new GemmaException($"{_file}: tensor '{info.Name}' appears twice");
            infos.Add(info);
        }

        // Data section: the end of the tensor infos, rounded up to the alignment.
        DataOffset = AlignUp(_c.Position, Alignment);
        foreach (var t in infos)
        {
            long start = checked(DataOffset + t.Offset);
            if (start > _c.Length || t.Bytes > _c.Length - start)
                throw new GemmaException(
                    $"{_file}: tensor '{t.Name}' data [offset {start}, {t.Bytes} bytes] extends past the end of the file ({_c.Length} bytes)");
            Tensors.Add(new GgufTensorInfo(owner, t.Name, t.Type, t.Dims, t.Elements, t.Bytes, t.Offset, start));
        }
        CheckNoOverlap();
    }

    private (string Name, GgmlType Type, long[] Dims, long Elements, long Bytes, long Offset) ReadTensorInfo(ulong index)
    {
        _c.Subject("tensor", null, (long)index);
        string name = _c.String("name");
        _c.Subject("tensor", name);
        uint nDims = _c.U32("n_dims");
        if (nDims is 0 or > MaxDims)
            throw new GemmaException($"{_file}: tensor '{name}' has {nDims} dimensions (supported: 1 to {MaxDims})");
        var dims = new long[nDims];
        long elements = 1;
        for (int d = 0; d < dims.Length; d++)
        {
            ulong ne = _c.U64("dimension");
            if (ne == 0 || ne > int.MaxValue)
                throw new GemmaException($"{_file}: tensor '{name}' ne[{d}] = {ne} is out of range (1 to {int.MaxValue})");
            dims[d] = (long)ne;
            if (elements > long.MaxValue / dims[d])
                throw new GemmaException($"{_file}: tensor '{name}' element count overflows 64 bits (dims [{string.Join(", ", dims[..(d + 1)])}])");
            elements *= dims[d];
        }
        uint typeId = _c.U32("type");
        if (!ElementTypes.TryGet(typeId, out ElementTraits? traits))
            throw new GemmaException($"{_file}: tensor '{name}' has unknown ggml type id {typeId}");
        GgmlType type = traits.Type;
        int blockSize = traits.BlockSize;
        if (dims[0] % blockSize != 0)
            throw new GemmaException(
                $"{_file}: tensor '{name}' of type {type} has rows of {dims[0]} elements, not a multiple of the block size {blockSize}");
        long bytes = traits.ByteSize(elements);
        ulong offset = _c.U64("offset");
        if (offset > long.MaxValue)
            throw new GemmaException($"{_file}: tensor '{name}' data offset {offset} is out of range");
        if (offset % Alignment != 0)
            throw new GemmaException($"{_file}: tensor '{name}' data offset {offset} is not a multiple of the alignment {Alignment}");
        return (name, type, dims, elements, bytes, (long)offset);
    }

    private void CheckNoOverlap()
    {
        var byOffset = Tensors.OrderBy(t => t.FileOffset).ToList();
        for (int i = 1; i < byOffset.Count; i++)
        {
            GgufTensorInfo a = byOffset[i - 1], b = byOffset[i];
            if (a.FileOffset + a.ByteSize > b.FileOffset)
                throw new GemmaException(
                    $"{_file}: tensor '{a.Name}' data [offset {a.FileOffset}, {a.ByteSize} bytes] overlaps tensor '{b.Name}' at offset {b.FileOffset}");
        }
    }

    private static long AlignUp(long position, uint alignment) =>
        checked(position + (alignment - position % alignment) % alignment);

    /// <summary>Smallest on-disk size of one value of <paramref name="type"/>; 0 for unknown types.</summary>
    private static int MinValueBytes(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        GgufValueType.String => 8,      // the length prefix
        GgufValueType.Array => 4 + 8,   // element type and count
        _ => 0,
    };

    // Field names for error messages (the cursor prefixes "metadata key '<key>'" only when it fails).
    private const string WhatValue = "value", WhatElementType = "array element type", WhatLength = "array length",
        WhatElement = "array element";

    private GgufValue ReadValue(uint typeId, string key, int depth)
    {
        var type = (GgufValueType)typeId;
        switch (type)
        {
            case GgufValueType.UInt8: return GgufValue.Scalar(type, _c.U8(WhatValue));
            case GgufValueType.Int8: return GgufValue.Scalar(type, (sbyte)_c.U8(WhatValue));
            case GgufValueType.UInt16: return GgufValue.Scalar(type, _c.U16(WhatValue));
            case GgufValueType.Int16: return GgufValue.Scalar(type, (short)_c.U16(WhatValue));
            case GgufValueType.UInt32: return GgufValue.Scalar(type, _c.U32(WhatValue));
            case GgufValueType.Int32: return GgufValue.Scalar(type, (int)_c.U32(WhatValue));
            case GgufValueType.Float32: return GgufValue.Scalar(type, _c.F32(WhatValue));
            case GgufValueType.UInt64: return GgufValue.Scalar(type, _c.U64(WhatValue));
            case GgufValueType.Int64: return GgufValue.Scalar(type, (long)_c.U64(WhatValue));
            case GgufValueType.Float64: return GgufValue.Scalar(type, _c.F64(WhatValue));
            case GgufValueType.Bool: return GgufValue.Scalar(type, ReadBool(WhatValue));
            case GgufValueType.String: return GgufValue.Scalar(type, _c.String(WhatValue));
            case GgufValueType.Array: return ReadArray(key, depth);
            default: throw new GemmaException($"{_file}: metadata key '{key}' has unknown value type {typeId}");
        }
    }

    private bool ReadBool(string what)
    {
        long at = _c.Position;
        byte b = _c.U8(what);
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw new GemmaException($"{_file}: {_c.Describe(what)} at offset {at} is a bool with byte value {b} (must be 0 or 1)"),
        };
    }

    private GgufValue ReadArray(string key, int depth)
    {
        long at = _c.Position;
        if (depth >= MaxArrayDepth)
            throw new GemmaException($"{_file}: metadata key '{key}' nests arrays deeper than {MaxArrayDepth} levels");
        uint elementTypeId = _c.U32(WhatElementType);
        var elementType = (GgufValueType)elementTypeId;
        int minBytes = MinValueBytes(elementType);
        if (minBytes == 0)
            throw new GemmaException($"{_file}: metadata array '{key}' has unknown element type {elementTypeId}");
        ulong count = _c.U64(WhatLength);
        // Check the count against the bytes that remain before allocating anything for it.
        if (count > (ulong)(_c.Remaining / minBytes))
            throw new GemmaException(
                $"{_file}: metadata array '{key}' at offset {at} claims {count} {GgufValue.Name(elementType)} elements " +
                $"(at least {minBytes} bytes each), but only {_c.Remaining} bytes remain in the file");
        if (count > (ulong)System.Array.MaxLength)
            throw new GemmaException($"{_file}: metadata array '{key}' has {count} elements, more than an array can hold");
        int n = (int)count;
        Array items = elementType switch
        {
            GgufValueType.UInt8 => _c.Array<byte>(n, WhatElement),
            GgufValueType.Int8 => _c.Array<sbyte>(n, WhatElement),
            GgufValueType.UInt16 => _c.Array<ushort>(n, WhatElement),
            GgufValueType.Int16 => _c.Array<short>(n, WhatElement),
            GgufValueType.UInt32 => _c.Array<uint>(n, WhatElement),
            GgufValueType.Int32 => _c.Array<int>(n, WhatElement),
            GgufValueType.Float32 => _c.Array<float>(n, WhatElement),
            GgufValueType.UInt64 => _c.Array<ulong>(n, WhatElement),
            GgufValueType.Int64 => _c.Array<long>(n, WhatElement),
            GgufValueType.Float64 => _c.Array<double>(n, WhatElement),
            GgufValueType.Bool => ReadBools(n),
            GgufValueType.String => ReadStrings(n),
            _ => ReadNested(n, key, depth),
        };
        return GgufValue.Arr(elementType, items);
    }

    private bool[] ReadBools(int n)
    {
        var result = new bool[n];
        for (int i = 0; i < n; i++) result[i] = ReadBool(WhatElement);
        return result;
    }

    private string[] ReadStrings(int n)
    {
        var result = new string[n];
        for (int i = 0; i < n; i++) result[i] = _c.String(WhatElement);
        return result;
    }

    private GgufValue[] ReadNested(int n, string key, int depth)
    {
        var result = new GgufValue[n];
        for (int i = 0; i < n; i++) result[i] = ReadArray(key, depth + 1);
        return result;
    }
}
