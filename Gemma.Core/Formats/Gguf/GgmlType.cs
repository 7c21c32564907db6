using Gemma.Kernels;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// ggml tensor element types, with the ids they have in GGUF files (<c>enum ggml_type</c> in
/// llama.cpp <c>ggml/include/ggml.h</c>). Ids 4, 5, 31–33 and 36–38 were removed from the format and
/// are rejected like any other unknown id.
/// </summary>
internal enum GgmlType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,
    /// <summary>IEEE float16.</summary>
    F16 = 1,
    /// <summary>32 × 4-bit, one fp16 scale, offset 8.</summary>
    Q4_0 = 2,
    /// <summary>32 × 4-bit, fp16 scale and minimum.</summary>
    Q4_1 = 3,
    /// <summary>32 × 5-bit, one fp16 scale, offset 16.</summary>
    Q5_0 = 6,
    /// <summary>32 × 5-bit, fp16 scale and minimum.</summary>
    Q5_1 = 7,
    /// <summary>32 × int8, one fp16 scale.</summary>
    Q8_0 = 8,
    /// <summary>32 × int8, fp16 scale and fp16 sum.</summary>
    Q8_1 = 9,
    /// <summary>k-quant super-block of 256, 2-bit.</summary>
    Q2_K = 10,
    /// <summary>k-quant super-block of 256, 3-bit.</summary>
    Q3_K = 11,
    /// <summary>k-quant super-block of 256, 4-bit with 6-bit sub-block scales and minimums.</summary>
    Q4_K = 12,
    /// <summary>k-quant super-block of 256, 5-bit.</summary>
    Q5_K = 13,
    /// <summary>k-quant super-block of 256, 6-bit with int8 sub-block scales.</summary>
    Q6_K = 14,
    /// <summary>k-quant super-block of 256, 8-bit (intermediate type of ggml's dot products).</summary>
    Q8_K = 15,
    /// <summary>i-quant, 2.06 bits per weight.</summary>
    IQ2_XXS = 16,
    /// <summary>i-quant, 2.31 bits per weight.</summary>
    IQ2_XS = 17,
    /// <summary>i-quant, 3.06 bits per weight.</summary>
    IQ3_XXS = 18,
    /// <summary>i-quant, 1.56 bits per weight.</summary>
    IQ1_S = 19,
    /// <summary>Non-linear 4-bit, blocks of 32.</summary>
    IQ4_NL = 20,
    /// <summary>i-quant, 3.44 bits per weight.</summary>
    IQ3_S = 21,
    /// <summary>i-quant, 2.5 bits per weight.</summary>
    IQ2_S = 22,
    /// <summary>Non-linear 4-bit, super-blocks of 256.</summary>
    IQ4_XS = 23,
    /// <summary>int8.</summary>
    I8 = 24,
    /// <summary>int16.</summary>
    I16 = 25,
    /// <summary>int32.</summary>
    I32 = 26,
    /// <summary>int64.</summary>
    I64 = 27,
    /// <summary>IEEE float64.</summary>
    F64 = 28,
    /// <summary>i-quant, 1.75 bits per weight.</summary>
    IQ1_M = 29,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
    /// <summary>Ternary, 1.69 bits per weight.</summary>
    TQ1_0 = 34,
    /// <summary>Ternary, 2.06 bits per weight.</summary>
    TQ2_0 = 35,
    /// <summary>OCP microscaling FP4 (E2M1 values, one E8M0 scale per 32).</summary>
    MXFP4 = 39,
}

/// <summary>
/// Block geometry of each <see cref="GgmlType"/>: a row of <c>ne[0]</c> elements is stored as
/// <c>ne[0] / BlockSize</c> blocks of <c>BlockBytes</c> bytes each. Sizes from llama.cpp
/// <c>gguf-py/gguf/constants.py</c> (<c>GGML_QUANT_SIZES</c>) and <c>ggml/src/ggml-common.h</c>.
/// </summary>
internal static class GgmlTypeInfo
{
    private const int QK_K = 256;

    /// <summary>
    /// Block size (elements) and block bytes for a raw type id; false for ids that are unknown or were
    /// removed from the format.
    /// </summary>
    public static bool TryGetBlock(uint typeId, out int blockSize, out int blockBytes)
    {
        (blockSize, blockBytes) = typeId switch
        {
            0 => (1, 4),                                    // F32
            1 => (1, 2),                                    // F16
            2 => (32, 2 + 16),                              // Q4_0: fp16 d, 16 bytes of nibbles
            3 => (32, 2 + 2 + 16),                          // Q4_1: fp16 d, fp16 m, nibbles
            6 => (32, 2 + 4 + 16),                          // Q5_0: fp16 d, 32 high bits, nibbles
            7 => (32, 2 + 2 + 4 + 16),                      // Q5_1
            8 => (32, 2 + 32),                              // Q8_0: fp16 d, 32 int8
            9 => (32, 4 + 4 + 32),                          // Q8_1: two floats (d, s), 32 int8
            10 => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),     // Q2_K = 84
            11 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),     // Q3_K = 110
            12 => (QK_K, 2 + 2 + QK_K / 2 + 12),            // Q4_K = 144
            13 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12), // Q5_K = 176
            14 => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16), // Q6_K = 210
            15 => (QK_K, 4 + QK_K + QK_K / 8),              // Q8_K = 292
            16 => (QK_K, 2 + QK_K / 4),                     // IQ2_XXS
            17 => (QK_K, 2 + QK_K / 4 + QK_K / 32),         // IQ2_XS
            18 => (QK_K, 2 + QK_K / 4 + QK_K / 8),          // IQ3_XXS
            19 => (QK_K, 2 + QK_K / 8 + QK_K / 16),         // IQ1_S
            20 => (32, 2 + 16),                             // IQ4_NL
            21 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4), // IQ3_S
            22 => (QK_K, 2 + QK_K / 4 + QK_K / 16),         // IQ2_S
            23 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),     // IQ4_XS
            24 => (1, 1),                                   // I8
            25 => (1, 2),                                   // I16
            26 => (1, 4),                                   // I32
            27 => (1, 8),                                   // I64
            28 => (1, 8),                                   // F64
            29 => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32), // IQ1_M
            30 => (1, 2),                                   // BF16
            34 => (QK_K, 2 + 4 * 13),                       // TQ1_0
            35 => (QK_K, 2 + 64),                           // TQ2_0
            39 => (32, 1 + 16),                             // MXFP4: E8M0 scale, 16 bytes of nibbles
            _ => (0, 0),
        };
        return blockSize != 0;
    }

    /// <summary>Elements per block of <paramref name="type"/>.</summary>
    public static int BlockSize(GgmlType type) =>
        TryGetBlock((uint)type, out int size, out _) ? size : throw new ArgumentOutOfRangeException(nameof(type));

    /// <summary>Bytes per block of <paramref name="type"/>.</summary>
    public static int BlockBytes(GgmlType type) =>
        TryGetBlock((uint)type, out _, out int bytes) ? bytes : throw new ArgumentOutOfRangeException(nameof(type));

    /// <summary>True for types whose blocks hold more than one element (the quantized types).</summary>
    public static bool IsQuantized(GgmlType type) => BlockSize(type) > 1;

    /// <summary>
    /// The kernel encoding that reads this type in place (F32, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), or false if tensors of this
    /// type must be converted (dequantized) at load time.
    /// </summary>
    public static bool TryGetWeightType(GgmlType type, out WeightType weightType)
    {
        switch (type)
        {
            case GgmlType.F32: weightType = WeightType.F32; return true;
            case GgmlType.BF16: weightType = WeightType.BF16; return true;
            case GgmlType.Q8_0: weightType = WeightType.Q8_0; return true;
            case GgmlType.Q4_0: weightType = WeightType.Q4_0; return true;
            case GgmlType.Q4_K: weightType = WeightType.Q4_K; return true;
            case GgmlType.Q5_K: weightType = WeightType.Q5_K; return true;
            case GgmlType.Q6_K: weightType = WeightType.Q6_K; return true;
            default: weightType = default; return false;
        }
    }

    /// <summary>Bytes used by <paramref name="elements"/> elements (a multiple of the block size).</summary>
    public static long ByteSize(GgmlType type, long elements)
    {
        if (!TryGetBlock((uint)type, out int size, out int bytes)) throw new ArgumentOutOfRangeException(nameof(type));
        if (elements % size != 0)
            throw new ArgumentException($"{type} needs a multiple of {size} elements, got {elements}.", nameof(elements));
        return checked(elements / size * bytes);
    }
}
