namespace Gemma.Kernels;

/// <summary>Decoding single rows of a <see cref="WeightMatrix"/> to float32 (embedding look-ups).</summary>
internal static unsafe class WeightRows
{
    /// <summary>Writes row <paramref name="row"/> of <paramref name="w"/> as float32 into <paramref name="destination"/>.</summary>
    public static void ToSingle(in WeightMatrix w, int row, Span<float> destination)
    {
        if ((uint)row >= (uint)w.Rows) throw new ArgumentOutOfRangeException(nameof(row), $"Row {row} outside [0, {w.Rows}).");
        if (destination.Length < w.Cols) throw new ArgumentException("Destination too short.", nameof(destination));
        ElementTypes.Of(w.Type).Decode!(new ReadOnlySpan<byte>(w.Row(row), checked((int)w.RowBytes)), destination[..w.Cols]);
    }
}
