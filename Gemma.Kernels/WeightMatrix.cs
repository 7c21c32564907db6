namespace Gemma.Kernels;

/// <summary>
/// A read-only row-major matrix <c>[Rows, Cols]</c> in one of the <see cref="WeightType"/> encodings,
/// addressed by a raw pointer into a memory mapping or pinned/native memory. The owner guarantees that
/// <c>ByteLength</c> bytes are readable for the lifetime of every kernel call; bounds are checked once,
/// where the view is created (file loaders), never in hot loops.
/// Layout: row r starts at <c>Data + r * RowBytes</c>; a Linear layer <c>y = x·Wᵀ</c> stores W as
/// <c>[out_features, in_features]</c>, exactly PyTorch's <c>nn.Linear.weight</c>.
/// </summary>
internal readonly unsafe struct WeightMatrix
{
    /// <summary>First byte of row 0.</summary>
    public readonly byte* Data;
    /// <summary>Number of rows (output features).</summary>
    public readonly int Rows;
    /// <summary>Number of columns (input features).</summary>
    public readonly int Cols;
    /// <summary>Element encoding.</summary>
    public readonly WeightType Type;

    /// <summary>Bytes per row in this encoding.</summary>
    public readonly long RowBytes;

    /// <summary>Creates a view; <paramref name="cols"/> must fill whole blocks of the type (32 for <see cref="WeightType.Q8_0"/>).</summary>
    public WeightMatrix(byte* data, int rows, int cols, WeightType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ElementTraits traits = ElementTypes.Of(type);
        if (cols % traits.BlockSize != 0)
            throw new ArgumentException($"{traits.Name} rows must be a multiple of {traits.BlockSize} elements, got {cols}.", nameof(cols));
        Data = data; Rows = rows; Cols = cols; Type = type; RowBytes = traits.ByteSize(cols);
    }

    /// <summary>Total bytes of the matrix.</summary>
    public long ByteLength => RowBytes * Rows;

    /// <summary>Elements per block of <paramref name="type"/> (1 for the float types), from the element-type table.</summary>
    public static int BlockSizeOf(WeightType type) => ElementTypes.Of(type).BlockSize;

    /// <summary>Bytes used by <paramref name="cols"/> elements of <paramref name="type"/>.</summary>
    public static long RowBytesOf(WeightType type, long cols) => ElementTypes.Of(type).ByteSize(cols);

    /// <summary>Pointer to the first byte of row <paramref name="row"/>.</summary>
    public byte* Row(int row) => Data + row * RowBytes;
}
