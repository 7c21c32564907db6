namespace Gemma.Kernels;

/// <summary>
/// Element encodings that the matrix kernels read directly from (memory-mapped) storage: the key of the kernel
/// dispatch (<c>MatMul.LinearWork.Run</c>). Geometry and decoders live in the <see cref="ElementTypes"/> row whose
/// <see cref="ElementTraits.InPlace"/> names the value (every value has exactly one row).
/// </summary>
internal enum WeightType
{
    /// <summary>IEEE float32, 4 bytes per element.</summary>
    F32,
    /// <summary>bfloat16 (high half of float32), 2 bytes per element.</summary>
    BF16,
    /// <summary>ggml Q8_0: blocks of 32 int8 values preceded by one fp16 scale, 34 bytes per block.</summary>
    Q8_0,
    /// <summary>ggml Q4_0: blocks of 32 4-bit values (offset 8) with one fp16 scale, 18 bytes per block.</summary>
    Q4_0,
    /// <summary>ggml Q4_K: super-blocks of 256 4-bit values, 8 sub-blocks with 6-bit scale and minimum, 144 bytes.</summary>
    Q4_K,
    /// <summary>ggml Q5_K: as Q4_K with a fifth bit per value, 176 bytes per 256.</summary>
    Q5_K,
    /// <summary>ggml Q6_K: super-blocks of 256 6-bit values (offset 32), 16 int8 sub-block scales, 210 bytes.</summary>
    Q6_K,
}
