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

    /// <summary>Creates a view; <paramref name="cols"/> must be a multiple of 32 for <see cref="WeightType.Q8_0"/>.</summary>
    public WeightMatrix(byte* data, int rows, int cols, WeightType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (type == WeightType.Q8_0 && cols % Q8_0.BlockSize != 0)
            throw new ArgumentException($"Q8_0 rows must be a multiple of {Q8_0.BlockSize} elements, got {cols}.", nameof(cols));
        Data = data; Rows = rows; Cols = cols; Type = type;
    }

    /// <summary>Bytes per row in this encoding.</summary>
    public long RowBytes => RowBytesOf(Type, Cols);

    /// <summary>Total bytes of the matrix.</summary>
    public long ByteLength => RowBytes * Rows;

    /// <summary>Bytes used by <paramref name="cols"/> elements of <paramref name="type"/>.</summary>
    public static long RowBytesOf(WeightType type, long cols) => type switch
    {
        WeightType.F32 => cols * 4,
        WeightType.BF16 => cols * 2,
        WeightType.Q8_0 => cols / Q8_0.BlockSize * Q8_0.BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Pointer to the first byte of row <paramref name="row"/>.</summary>
    public byte* Row(int row) => Data + row * RowBytes;
}
