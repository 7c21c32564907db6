using System.Runtime.CompilerServices;

namespace Gemma.Kernels;

/// <summary>
/// bfloat16 stored as <see cref="ushort"/>: the top 16 bits of an IEEE float32.
/// .NET 10 has no BFloat16 type and no AVX512-BF16 intrinsics, so widening is a shift left by 16.
/// </summary>
internal static class BFloat16
{
    /// <summary>Exact widening: bf16 bits become the high half of a float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Round-to-nearest-even narrowing (what PyTorch's <c>.to(torch.bfloat16)</c> does); NaN stays NaN.</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>Widens <paramref name="source"/> into <paramref name="destination"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("Destination too short.", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = ToSingle(source[i]);
    }
}
