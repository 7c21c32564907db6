using Gemma.Kernels;
namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// One tensor of a GGUF file: name, ggml type, dimensions and where its bytes are. The dimensions are in ggml
/// order — <c>Dimensions[0]</c> (ne[0]) is the innermost, contiguous one — so a PyTorch <c>[out, in]</c>
/// matrix appears as <c>[in, out]</c>; <see cref="GetPyTorchShape"/> gives the reversed shape.
/// The byte range was validated at open (inside the file, aligned, not overlapping another tensor).
/// </summary>
internal sealed unsafe class GgufTensorInfo
{
    private readonly GgufFile? _file;
    private readonly long[] _dims;

    internal GgufTensorInfo(GgufFile? file, string name, GgmlType type, long[] dims, long elementCount, long byteSize,
        long dataOffset, long fileOffset)
    {
        _file = file;
        Name = name;
        Type = type;
        _dims = dims;
        ElementCount = elementCount;
        ByteSize = byteSize;
        DataOffset = dataOffset;
        FileOffset = fileOffset;
    }

    /// <summary>Tensor name, e.g. <c>blk.0.attn_q.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Element encoding.</summary>
    public GgmlType Type { get; }

    /// <summary>Number of dimensions (1 to 4).</summary>
    public int DimensionCount => _dims.Length;

    /// <summary>Dimensions in ggml order: ne[0] first (innermost, contiguous).</summary>
    public ReadOnlySpan<long> Dimensions => _dims;

    /// <summary>Dimensions in PyTorch order (outermost first): ggml's order reversed. A new array.</summary>
    public long[] GetPyTorchShape()
    {
        var shape = (long[])_dims.Clone();
        Array.Reverse(shape);
        return shape;
    }

    /// <summary>Converts a PyTorch shape (outermost first) to ggml order (innermost first).</summary>
    public static long[] ToGgmlDimensions(ReadOnlySpan<long> pyTorchShape)
    {
        long[] dims = pyTorchShape.ToArray();
        Array.Reverse(dims);
        return dims;
    }

    /// <summary>Total number of elements (product of the dimensions).</summary>
    public long ElementCount { get; }

    /// <summary>Bytes of tensor data: <c>ElementCount / blockSize × blockBytes</c>.</summary>
    public long ByteSize { get; }

    /// <summary>Elements per row: ne[0], a multiple of the type's block size.</summary>
    public long RowLength => _dims[0];

    /// <summary>Number of rows: the product of ne[1..].</summary>
    public long RowCount => ElementCount / _dims[0];

    /// <summary>Bytes per row.</summary>
    public long RowByteSize => ByteSize / RowCount;

    /// <summary>Offset of the data relative to the start of the data section (as stored in the file).</summary>
    public long DataOffset { get; }

    /// <summary>Absolute offset of the data in the file.</summary>
    public long FileOffset { get; }

    /// <summary>
    /// Pointer to the first byte of the data inside the read-only mapping. Valid until the owning
    /// <see cref="GgufFile"/> is disposed; never write through it (the mapping is read-only: a write faults).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public byte* DataPointer
    {
        get
        {
            if (_file is null) throw new InvalidOperationException($"Tensor '{Name}' is not backed by a mapped file.");
            return _file.BasePointer + FileOffset;
        }
    }

    /// <summary>
    /// The whole tensor as a span (valid while the file is open). Tensors over 2 GiB cannot be one span: use
    /// <see cref="GetData(long, int)"/> per row range or <see cref="DataPointer"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tensor is larger than <see cref="int.MaxValue"/> bytes.</exception>
    public ReadOnlySpan<byte> GetData()
    {
        if (ByteSize > int.MaxValue)
            throw new InvalidOperationException($"Tensor '{Name}' is {ByteSize} bytes, too large for one span; read it in slices.");
        return new ReadOnlySpan<byte>(DataPointer, (int)ByteSize);
    }

    /// <summary><paramref name="length"/> bytes of the tensor starting at byte <paramref name="start"/> of its data.</summary>
    public ReadOnlySpan<byte> GetData(long start, int length)
    {
        if (start < 0 || length < 0 || start > ByteSize - length)
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, +{length}) is outside tensor '{Name}' ({ByteSize} bytes).");
        return new ReadOnlySpan<byte>(DataPointer + start, length);
    }

    /// <summary>
    /// Views the tensor in place as a kernel matrix <c>[RowCount, RowLength]</c> — for a PyTorch <c>[out, in]</c>
    /// weight that is <c>[out, in]</c> again (ggml's ne = [in, out]). Only for types the kernels read directly
    /// (<see cref="ElementTraits.InPlace"/>: F32, BF16, Q8_0); valid while the file is open.
    /// </summary>
    public WeightMatrix ToWeightMatrix()
    {
        if (ElementTypes.Of(Type).InPlace is not WeightType weightType)
            throw new GemmaException($"{_file?.FileName}: tensor '{Name}' has type {Type}, which the kernels cannot read in place (F32, BF16, Q8_0); dequantize it");
        if (RowCount > int.MaxValue)
            throw new GemmaException($"{_file?.FileName}: tensor '{Name}' has {RowCount} rows, more than a matrix view can address");
        return new WeightMatrix(DataPointer, (int)RowCount, (int)RowLength, weightType);
    }

    /// <summary>
    /// Decodes rows <c>[firstRow, firstRow + destination.Length / RowLength)</c> to float32 (see
    /// <see cref="ElementTraits.Decode"/>); <paramref name="destination"/> must hold a whole number of rows. A type that
    /// cannot be decoded is a <see cref="GemmaException"/> naming the file, tensor and type.
    /// </summary>
    public void DequantizeRows(long firstRow, Span<float> destination)
    {
        RowDecoder decode = ElementTypes.Of(Type).Decode ?? throw new GemmaException(
                $"{_file?.FileName}: tensor '{Name}' has type {Type}, which cannot be loaded (supported: {ElementTypes.Decodable})");
        if (destination.Length % RowLength != 0)
            throw new ArgumentException($"Destination must hold whole rows of {RowLength} elements.", nameof(destination));
        long rows = destination.Length / RowLength;
        if (firstRow < 0 || firstRow > RowCount - rows)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"Rows [{firstRow}, +{rows}) are outside tensor '{Name}' ({RowCount} rows).");
        long bytes = rows * RowByteSize;
        if (bytes > int.MaxValue)
            throw new ArgumentException($"Decode at most {int.MaxValue} bytes at a time.", nameof(destination));
        decode(GetData(firstRow * RowByteSize, (int)bytes), destination);
    }

    /// <summary>E.g. <c>blk.0.attn_q.weight Q8_0 [2304, 2048] @ 123456</c>.</summary>
    public override string ToString() => $"{Name} {Type} [{string.Join(", ", _dims)}] @ {FileOffset}";
}
