namespace Gemma.Core.Formats;

/// <summary>
/// A stored tensor located inside a <see cref="MappedFile"/>: name, element type, shape in PyTorch order
/// (outermost first, last dimension contiguous) and its checked byte range.
/// </summary>
public sealed unsafe class TensorView
{
    /// <summary>Creates a view; the caller has already checked that the range lies inside <paramref name="file"/>.</summary>
    public TensorView(string name, TensorDType type, long[] shape, MappedFile file, long offset, long byteLength)
    {
        Name = name; Type = type; Shape = shape; File = file; Offset = offset; ByteLength = byteLength;
    }

    /// <summary>Tensor name as stored in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public TensorDType Type { get; }
    /// <summary>Shape, PyTorch order.</summary>
    public long[] Shape { get; }
    /// <summary>The file holding the data.</summary>
    public MappedFile File { get; }
    /// <summary>Absolute offset of the first byte in <see cref="File"/>.</summary>
    public long Offset { get; }
    /// <summary>Bytes of data.</summary>
    public long ByteLength { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (long d in Shape) n = checked(n * d); return n; }
    }

    /// <summary>Pointer to the data (range re-checked against the mapping).</summary>
    public byte* Data => File.Pointer(Offset, ByteLength, $"tensor '{Name}'");

    /// <summary>Shape as text, e.g. <c>[256000, 2304]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
