namespace Gemma.Kernels;

/// <summary>Element encodings that the matrix kernels read directly from (memory-mapped) storage.</summary>
internal enum WeightType
{
    /// <summary>IEEE float32, 4 bytes per element.</summary>
    F32,
    /// <summary>bfloat16 (high half of float32), 2 bytes per element.</summary>
    BF16,
    /// <summary>ggml Q8_0: blocks of 32 int8 values preceded by one fp16 scale, 34 bytes per block.</summary>
    Q8_0,
}
