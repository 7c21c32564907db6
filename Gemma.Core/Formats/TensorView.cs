namespace Gemma.Core.Formats;

/// <summary>
/// A stored tensor: name, element type, shape in PyTorch order (outermost first, last dimension contiguous) and a
/// pointer to its bytes. The range was checked against its file when the view was made; the pointer is valid while
/// the <see cref="ITensorSource"/> that made the view is not disposed.
/// </summary>
public sealed unsafe class TensorView
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

    /// <summary>Shape as text, e.g. <c>[256000, 2304]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
