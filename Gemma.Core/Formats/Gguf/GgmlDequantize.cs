using Gemma.Kernels;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// Converts ggml-encoded bytes to float32 for the types the kernels cannot read in place, so that files with
/// them (Q4_K_M: Q4_K + Q6_K + F32; Q5_K_M: Q5_K + Q6_K + F32; Q3_K_M, Q2_K, …) load by dequantizing at load time.
/// </summary>
internal static class GgmlDequantize
{
    /// <summary>True if <see cref="ToSingle"/> handles <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
        or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>The supported types, for error messages.</summary>
    public static string SupportedTypes => "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

    /// <summary>
    /// Decodes <c>destination.Length</c> elements (a multiple of the type's block size) from
    /// <paramref name="source"/> (at least their byte size).
    /// </summary>
    /// <exception cref="NotSupportedException">The type is not one of <see cref="SupportedTypes"/>.</exception>
    public static void ToSingle(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                if (source.Length < (long)destination.Length * 4) throw new ArgumentException("Source too short.", nameof(source));
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(source[..(destination.Length * 4)]).CopyTo(destination);
                break;
            case GgmlType.BF16:
                if (source.Length < (long)destination.Length * 2) throw new ArgumentException("Source too short.", nameof(source));
                BFloat16.ToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(source[..(destination.Length * 2)]), destination);
                break;
            case GgmlType.F16: Dequantizer.DequantizeF16(source, destination); break;
            case GgmlType.Q8_0: Dequantizer.DequantizeQ8_0(source, destination); break;
            case GgmlType.Q4_0: Dequantizer.DequantizeQ4_0(source, destination); break;
            case GgmlType.Q4_1: Dequantizer.DequantizeQ4_1(source, destination); break;
            case GgmlType.Q5_0: Dequantizer.DequantizeQ5_0(source, destination); break;
            case GgmlType.Q5_1: Dequantizer.DequantizeQ5_1(source, destination); break;
            case GgmlType.Q2_K: Dequantizer.DequantizeQ2_K(source, destination); break;
            case GgmlType.Q3_K: Dequantizer.DequantizeQ3_K(source, destination); break;
            case GgmlType.Q4_K: Dequantizer.DequantizeQ4_K(source, destination); break;
            case GgmlType.Q5_K: Dequantizer.DequantizeQ5_K(source, destination); break;
            case GgmlType.Q6_K: Dequantizer.DequantizeQ6_K(source, destination); break;
            default: throw new NotSupportedException($"Dequantizing {type} is not supported (supported: {SupportedTypes}).");
        }
    }
}
