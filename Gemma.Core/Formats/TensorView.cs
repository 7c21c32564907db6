using Gemma.Kernels;

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
    public TensorView(string name, GgmlType type, long[] shape, string filePath, long offset, byte* data, long byteLength)
    {
        Name = name; Type = type; Shape = shape; FilePath = filePath; Offset = offset; _data = data; ByteLength = byteLength;
    }

    /// <summary>Tensor name as stored in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public GgmlType Type { get; }

    /// <summary>The element type's traits (geometry, decoder).</summary>
    public ElementTraits Traits => ElementTypes.Of(Type);
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
    /// Decodes row <paramref name="row"/> (the last dimension; a 1-D tensor is one row) to float32 with the type's
    /// decoder (<see cref="ElementTraits.Decode"/>): exact for F32, BF16 and F16, <c>d · q</c> for Q8_0.
    /// </summary>
    public void ReadRow(long row, Span<float> destination)
    {
        long cols = Shape.Length == 0 ? 1 : Shape[^1];
        long rows = cols == 0 ? 0 : ElementCount / cols;
        if ((ulong)row >= (ulong)rows) throw new ArgumentOutOfRangeException(nameof(row), $"Row {row} outside [0, {rows}) of tensor '{Name}'.");
        if (destination.Length < cols) throw new ArgumentException("Destination too short.", nameof(destination));
        byte* p = _data + row * (ByteLength / rows);
        RowDecoder decode = Traits.Decode ?? throw new GemmaException(
            $"{FilePath}: tensor '{Name}' has type {Type}, which this engine cannot decode (supported: {ElementTypes.Decodable}).");
        decode(new ReadOnlySpan<byte>(p, checked((int)(ByteLength / rows))), destination[..(int)cols]);
    }

    /// <summary>Shape as text, e.g. <c>[256000, 2304]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
