namespace Gemma.Core.Formats;

/// <summary>
/// A stored tensor: name, element type, shape in PyTorch order (outermost first, last dimension contiguous) and a
/// pointer to its bytes. The range was checked against its file when the view was made; the pointer is valid while
/// the <see cref="ITensorSource"/> that made the view is not disposed.
/// </summary>
internal sealed unsafe class TensorView
{
    private readonly byte* _data;

    /// <summary>Creates a view over <paramref name="byteLength"/> already range-checked bytes at <paramref name="data"/>.</summary>
    public TensorView(string name, TensorDType type, long[] shape, string filePath, long offset, byte* data, long byteLength)
    {
        Name = name; Type = type; Shape = shape; FilePath = filePath; Offset = offset; _data = data; ByteLength = byteLength;
    }

    /// <summary>Tensor name as stored in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public TensorDType Type { get; }
    /// <summary>Shape, PyTorch order.</summary>
    public long[] Shape { get; }
    /// <summary>The file holding the data (for messages).</summary>
    public string FilePath { get; }
    /// <summary>Offset of the first byte in <see cref="FilePath"/> (-1 when the data was converted into memory at load).</summary>
    public long Offset { get; }
    /// <summary>Bytes of data.</summary>
    public long ByteLength { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Shape) n = checked(n * d); return n; }
    }

    /// <summary>Pointer to the data.</summary>
    public byte* Data => _data;

    /// <summary>
    /// Decodes row <paramref name="row"/> (the last dimension; a 1-D tensor is one row) to float32: exact for F32,
    /// BF16 and F16, ggml's dequantization for the block types.
    /// </summary>
    public void ReadRow(long row, Span<float> destination)
    {
        long cols = Shape.Length == 0 ? 1 : Shape[^1];
        long rows = cols == 0 ? 0 : ElementCount / cols;
        if ((ulong)row >= (ulong)rows) throw new ArgumentOutOfRangeException(nameof(row), $"Row {row} outside [0, {rows}) of tensor '{Name}'.");
        if (destination.Length < cols) throw new ArgumentException("Destination too short.", nameof(destination));
        byte* p = _data + row * (ByteLength / rows);
        int n = (int)cols;
        switch (Type)
        {
            case TensorDType.F32: new ReadOnlySpan<float>(p, n).CopyTo(destination); break;
            case TensorDType.BF16: Kernels.BFloat16.ToSingle(new ReadOnlySpan<ushort>(p, n), destination); break;
            case TensorDType.F16: for (int i = 0; i < n; i++) destination[i] = (float)((Half*)p)[i]; break;
            case TensorDType.Q8_0 or TensorDType.Q4_0 or TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K:
                Kernels.WeightRows.ToSingle(new Kernels.WeightMatrix(p, 1, n, TensorDTypes.ToWeightType(Type)!.Value), 0, destination);
                break;
            default: throw new GemmaException($"{FilePath}: tensor '{Name}' has unsupported type {Type}.");
        }
    }

    /// <summary>Shape as text, e.g. <c>[256000, 2304]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
