using System.Runtime.InteropServices;

namespace Gemma.Kernels;

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

/// <summary>Decodes <c>destination.Length</c> elements (whole blocks) from <paramref name="source"/> to float32.</summary>
internal delegate void RowDecoder(ReadOnlySpan<byte> source, Span<float> destination);

/// <summary>Encodes <c>source.Length</c> float32 elements (whole blocks) into <paramref name="destination"/>.</summary>
internal delegate void RowEncoder(ReadOnlySpan<float> source, Span<byte> destination);

/// <summary>
/// Everything the engine knows about one element encoding, in one row (after ggml's <c>type_traits</c>): a row of
/// <c>n</c> elements is <c>n / BlockSize</c> blocks of <c>BlockBytes</c> bytes. Loaders, converters and the kernel
/// dispatch read this table; adding a format is one row here plus its kernels.
/// </summary>
/// <param name="Type">The ggml type id (also its GGUF id).</param>
/// <param name="BlockSize">Elements per block (1 for plain floats and integers).</param>
/// <param name="BlockBytes">Bytes per block.</param>
internal sealed record ElementTraits(GgmlType Type, int BlockSize, int BlockBytes)
{
    /// <summary>The kernel encoding that reads this type in place from the mapping; null if it must be converted at load.</summary>
    public WeightType? InPlace { get; init; }

    /// <summary>What a weight matrix of this type is converted to at load when <see cref="InPlace"/> is null (F16 → exact F32, block formats → Q8_0).</summary>
    public WeightType? LoadAs { get; init; }

    /// <summary>Row decoder to float32 (the scalar reference); null when the engine cannot read this type at all.</summary>
    public RowDecoder? Decode { get; init; }

    /// <summary>Row encoder from float32, for the converters; null when the engine does not write this type.</summary>
    public RowEncoder? Encode { get; init; }

    /// <summary>The type's name (<c>Q8_0</c>).</summary>
    public string Name => Type.ToString();

    /// <summary>Bytes of <paramref name="elements"/> elements, or -1 when they do not fill whole blocks.</summary>
    public long TryByteSize(long elements) => elements % BlockSize == 0 ? checked(elements / BlockSize * BlockBytes) : -1;

    /// <summary>Bytes of <paramref name="elements"/> elements.</summary>
    /// <exception cref="ArgumentException">They do not fill whole blocks.</exception>
    public long ByteSize(long elements) => TryByteSize(elements) is long b and >= 0 ? b
        : throw new ArgumentException($"{Name} needs a multiple of {BlockSize} elements, got {elements}.", nameof(elements));
}

/// <summary>The element-type table: one <see cref="ElementTraits"/> per ggml type id.</summary>
/// <remarks>
/// Block sizes from llama.cpp <c>gguf-py/gguf/constants.py</c> (<c>GGML_QUANT_SIZES</c>) and
/// <c>ggml/src/ggml-common.h</c>. Types with no decoder (i-quants, ternary, MXFP4, integers) are known only by their
/// geometry, so a file that holds them still parses and fails with a clear message at load.
/// </remarks>
internal static class ElementTypes
{
    private const int QK_K = Dequantizer.QK_K;
    private static readonly ElementTraits?[] ById = Build();
    private static readonly ElementTraits[] ByKernel = ById.Where(t => t?.InPlace != null).OrderBy(t => t!.InPlace).ToArray()!;

    /// <summary>IEEE float32.</summary>
    public static ElementTraits F32 => ById[(int)GgmlType.F32]!;
    /// <summary>IEEE float16.</summary>
    public static ElementTraits F16 => ById[(int)GgmlType.F16]!;
    /// <summary>bfloat16.</summary>
    public static ElementTraits BF16 => ById[(int)GgmlType.BF16]!;
    /// <summary>ggml Q8_0.</summary>
    public static ElementTraits Q8_0 => ById[(int)GgmlType.Q8_0]!;

    private static ElementTraits?[] Build()
    {
        var t = new ElementTraits?[(int)GgmlType.MXFP4 + 1];
        void Add(ElementTraits e) => t[(int)e.Type] = e;
        WeightType q8 = WeightType.Q8_0;

        Add(new(GgmlType.F32, 1, 4)
        {
            InPlace = WeightType.F32,
            Decode = (s, d) => MemoryMarshal.Cast<byte, float>(s[..(d.Length * 4)]).CopyTo(d),
            Encode = (s, d) => MemoryMarshal.AsBytes(s).CopyTo(d),
        });
        Add(new(GgmlType.F16, 1, 2)
        {
            LoadAs = WeightType.F32, // no F16 kernels: widened once, exactly
            Decode = Dequantizer.DequantizeF16,
            Encode = (s, d) => { for (int i = 0; i < s.Length; i++) MemoryMarshal.Write(d[(2 * i)..], (Half)s[i]); },
        });
        Add(new(GgmlType.BF16, 1, 2)
        {
            InPlace = WeightType.BF16,
            Decode = (s, d) => BFloat16.ToSingle(MemoryMarshal.Cast<byte, ushort>(s[..(d.Length * 2)]), d),
            Encode = (s, d) => { for (int i = 0; i < s.Length; i++) MemoryMarshal.Write(d[(2 * i)..], BFloat16.FromSingle(s[i])); },
        });
        Add(new(GgmlType.Q8_0, Kernels.Q8_0.BlockSize, Kernels.Q8_0.BlockBytes)
        {
            InPlace = WeightType.Q8_0,
            Decode = Dequantizer.DequantizeQ8_0,
            Encode = Quantizer.QuantizeQ8_0,
        });
        // 4- to 6-bit formats with kernels of their own (MatMul.Q4*.cs): read in place.
        Add(new(GgmlType.Q4_0, Dequantizer.Q4_0BlockSize, Dequantizer.Q4_0BlockBytes) { InPlace = WeightType.Q4_0, Decode = Dequantizer.DequantizeQ4_0, Encode = Quantizer.QuantizeQ4_0 });
        Add(new(GgmlType.Q4_K, QK_K, Dequantizer.Q4_KBlockBytes) { InPlace = WeightType.Q4_K, Decode = Dequantizer.DequantizeQ4_K, Encode = Quantizer.QuantizeQ4_K });
        Add(new(GgmlType.Q5_K, QK_K, Dequantizer.Q5_KBlockBytes) { InPlace = WeightType.Q5_K, Decode = Dequantizer.DequantizeQ5_K, Encode = Quantizer.QuantizeQ5_K });
        Add(new(GgmlType.Q6_K, QK_K, Dequantizer.Q6_KBlockBytes) { InPlace = WeightType.Q6_K, Decode = Dequantizer.DequantizeQ6_K, Encode = Quantizer.QuantizeQ6_K });
        // Decoded at load (scalar reference dequantizers) and re-encoded as Q8_0, until they get kernels of their own.
        Add(new(GgmlType.Q4_1, Dequantizer.Q4_1BlockSize, Dequantizer.Q4_1BlockBytes) { LoadAs = q8, Decode = Dequantizer.DequantizeQ4_1 });
        Add(new(GgmlType.Q5_0, Dequantizer.Q4_1BlockSize, Dequantizer.Q5_0BlockBytes) { LoadAs = q8, Decode = Dequantizer.DequantizeQ5_0 });
        Add(new(GgmlType.Q5_1, Dequantizer.Q4_1BlockSize, Dequantizer.Q5_1BlockBytes) { LoadAs = q8, Decode = Dequantizer.DequantizeQ5_1 });
        Add(new(GgmlType.Q2_K, QK_K, Dequantizer.Q2_KBlockBytes) { LoadAs = q8, Decode = Dequantizer.DequantizeQ2_K });
        Add(new(GgmlType.Q3_K, QK_K, Dequantizer.Q3_KBlockBytes) { LoadAs = q8, Decode = Dequantizer.DequantizeQ3_K });

        // Geometry only: the engine cannot decode these.
        Add(new(GgmlType.Q8_1, 32, 4 + 4 + 32));                             // two floats (d, s), 32 int8
        Add(new(GgmlType.Q8_K, QK_K, 4 + QK_K + QK_K / 8));                  // 292
        Add(new(GgmlType.IQ2_XXS, QK_K, 2 + QK_K / 4));
        Add(new(GgmlType.IQ2_XS, QK_K, 2 + QK_K / 4 + QK_K / 32));
        Add(new(GgmlType.IQ3_XXS, QK_K, 2 + QK_K / 4 + QK_K / 8));
        Add(new(GgmlType.IQ1_S, QK_K, 2 + QK_K / 8 + QK_K / 16));
        Add(new(GgmlType.IQ4_NL, 32, 2 + 16));
        Add(new(GgmlType.IQ3_S, QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4));
        Add(new(GgmlType.IQ2_S, QK_K, 2 + QK_K / 4 + QK_K / 16));
        Add(new(GgmlType.IQ4_XS, QK_K, 2 + 2 + QK_K / 2 + QK_K / 64));
        Add(new(GgmlType.I8, 1, 1));
        Add(new(GgmlType.I16, 1, 2));
        Add(new(GgmlType.I32, 1, 4));
        Add(new(GgmlType.I64, 1, 8));
        Add(new(GgmlType.F64, 1, 8));
        Add(new(GgmlType.IQ1_M, QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32));
        Add(new(GgmlType.TQ1_0, QK_K, 2 + 4 * 13));
        Add(new(GgmlType.TQ2_0, QK_K, 2 + 64));
        Add(new(GgmlType.MXFP4, 32, 1 + 16));                                // E8M0 scale, 16 bytes of nibbles
        return t;
    }

    /// <summary>The row of a raw type id; false for ids that are unknown or were removed from the format.</summary>
    public static bool TryGet(uint id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ElementTraits? traits)
    {
        traits = id < (uint)ById.Length ? ById[id] : null;
        return traits != null;
    }

    /// <summary>The row of <paramref name="type"/>.</summary>
    public static ElementTraits Of(GgmlType type) =>
        TryGet((uint)type, out ElementTraits? t) ? t : throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown ggml type.");

    /// <summary>The row whose kernels are <paramref name="type"/>.</summary>
    public static ElementTraits Of(WeightType type) =>
        (uint)type < (uint)ByKernel.Length && ByKernel[(int)type].InPlace == type ? ByKernel[(int)type]
            : throw new ArgumentOutOfRangeException(nameof(type), type, "No element type is read in place by these kernels.");

    /// <summary>Names of the types the engine can decode, for error messages.</summary>
    public static string Decodable => string.Join(", ", ById.Where(t => t?.Decode != null).Select(t => t!.Name));
}
