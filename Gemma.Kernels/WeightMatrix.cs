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

    /// <summary>
    /// Creates a view; <paramref name="cols"/> must be a multiple of the type's block: 32 for Q8_0 and Q4_0, 256 for
    /// the K-quants.
    /// </summary>
    public WeightMatrix(byte* data, int rows, int cols, WeightType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        int block = BlockSizeOf(type);
        if (cols % block != 0)
            throw new ArgumentException($"{type} rows must be a multiple of {block} elements, got {cols}.", nameof(cols));
        Data = data; Rows = rows; Cols = cols; Type = type;
    }

    /// <summary>Elements per block of <paramref name="type"/> (1 for the float types).</summary>
    public static int BlockSizeOf(WeightType type) => type switch
    {
        WeightType.F32 or WeightType.BF16 => 1,
        WeightType.Q8_0 or WeightType.Q4_0 => 32,
        WeightType.Q4_K or WeightType.Q5_K or WeightType.Q6_K => Dequantizer.QK_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

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
        WeightType.Q4_0 => cols / Dequantizer.Q4_0BlockSize * Dequantizer.Q4_0BlockBytes,
        WeightType.Q4_K => cols / Dequantizer.QK_K * Dequantizer.Q4_KBlockBytes,
        WeightType.Q5_K => cols / Dequantizer.QK_K * Dequantizer.Q5_KBlockBytes,
        WeightType.Q6_K => cols / Dequantizer.QK_K * Dequantizer.Q6_KBlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Pointer to the first byte of row <paramref name="row"/>.</summary>
    public byte* Row(int row) => Data + row * RowBytes;
}
