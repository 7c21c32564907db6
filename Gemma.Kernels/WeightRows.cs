namespace Gemma.Kernels;

/// <summary>Decoding single rows of a <see cref="WeightMatrix"/> to float32 (embedding look-ups).</summary>
internal static unsafe class WeightRows
{
    /// <summary>Writes row <paramref name="row"/> of <paramref name="w"/> as float32 into <paramref name="destination"/>.</summary>
    public static void ToSingle(in WeightMatrix w, int row, Span<float> destination)
    {
        if ((uint)row >= (uint)w.Rows) throw new ArgumentOutOfRangeException(nameof(row), $"Row {row} outside [0, {w.Rows}).");
        if (destination.Length < w.Cols) throw new ArgumentException("Destination too short.", nameof(destination));
        byte* p = w.Row(row);
        switch (w.Type)
        {
            case WeightType.F32:
                new ReadOnlySpan<float>(p, w.Cols).CopyTo(destination);
                break;
            case WeightType.BF16:
                BFloat16.ToSingle(new ReadOnlySpan<ushort>(p, w.Cols), destination);
                break;
            case WeightType.Q8_0:
                for (int b = 0; b < w.Cols / Q8_0.BlockSize; b++)
                {
                    byte* block = p + b * Q8_0.BlockBytes;
                    float d = (float)BitConverter.UInt16BitsToHalf(*(ushort*)block);
                    for (int j = 0; j < Q8_0.BlockSize; j++) destination[b * Q8_0.BlockSize + j] = d * ((sbyte*)(block + 2))[j];
                }
                break;
            case WeightType.Q4_0:
                Dequantizer.DequantizeQ4_0(new ReadOnlySpan<byte>(p, (int)w.RowBytes), destination[..w.Cols]);
                break;
            case WeightType.Q4_K:
                Dequantizer.DequantizeQ4_K(new ReadOnlySpan<byte>(p, (int)w.RowBytes), destination[..w.Cols]);
                break;
            case WeightType.Q5_K:
                Dequantizer.DequantizeQ5_K(new ReadOnlySpan<byte>(p, (int)w.RowBytes), destination[..w.Cols]);
                break;
            case WeightType.Q6_K:
                Dequantizer.DequantizeQ6_K(new ReadOnlySpan<byte>(p, (int)w.RowBytes), destination[..w.Cols]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(w));
        }
    }
}
