using System.Buffers.Binary;

namespace Gemma.Kernels;

/// <summary>
/// Scalar reference quantizers producing ggml block formats byte-for-byte like llama.cpp's
/// <c>quantize_row_*_ref</c> (<c>ggml/src/ggml-quants.c</c>). Offline code (model conversion), not a hot path.
/// </summary>
internal static partial class Quantizer
{
    /// <summary>
    /// float32 → Q8_0, exactly <c>quantize_row_q8_0_ref</c>: per block of 32,
    /// <c>amax = max|x|</c>, <c>d = amax / 127</c>, <c>id = d != 0 ? 1/d : 0</c>, <c>q = roundf(x·id)</c>
    /// (round half away from zero), and <c>d</c> stored as fp16 (round to nearest even). Note that q is computed
    /// with the float32 d, not the fp16-rounded one, as in ggml.
    /// Layout of a block (34 bytes): <c>fp16 d</c> (little-endian) then <c>int8 qs[32]</c>; value = d·q.
    /// </summary>
    /// <param name="source">Elements; the length must be a multiple of 32.</param>
    /// <param name="destination">At least <c>source.Length / 32 × 34</c> bytes.</param>
    /// <exception cref="ArgumentException">Bad lengths, or a NaN/infinite input (ggml's behaviour there is undefined).</exception>
    public static void QuantizeQ8_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        if (source.Length % Q8_0.BlockSize != 0)
            throw new ArgumentException($"Q8_0 needs a multiple of {Q8_0.BlockSize} elements, got {source.Length}.", nameof(source));
        int blocks = source.Length / Q8_0.BlockSize;
        if (destination.Length < (long)blocks * Q8_0.BlockBytes)
            throw new ArgumentException($"Destination needs {(long)blocks * Q8_0.BlockBytes} bytes, has {destination.Length}.", nameof(destination));

        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = source.Slice(b * Q8_0.BlockSize, Q8_0.BlockSize);
            Span<byte> y = destination.Slice(b * Q8_0.BlockBytes, Q8_0.BlockBytes);

            float amax = 0f;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            if (!float.IsFinite(amax))
                throw new ArgumentException($"Q8_0 input block {b} contains NaN or infinity.", nameof(source));

            float d = amax / 127f;
            float id = d != 0f ? 1f / d : 0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y, BitConverter.HalfToUInt16Bits((Half)d));
            for (int j = 0; j < Q8_0.BlockSize; j++)
            {
                // roundf: ties away from zero. |x·id| ≤ 127 (+ rounding), so the cast cannot overflow.
                y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }
}
