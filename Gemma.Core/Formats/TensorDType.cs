namespace Gemma.Core.Formats;

/// <summary>Element types of stored tensors, across safetensors and GGUF.</summary>
internal enum TensorDType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>ggml Q8_0 blocks (32 values, fp16 scale).</summary>
    Q8_0,
    /// <summary>ggml Q4_0 blocks (32 4-bit values, fp16 scale, 18 bytes).</summary>
    Q4_0,
    /// <summary>ggml Q4_K super-blocks (256 values, 144 bytes).</summary>
    Q4_K,
    /// <summary>ggml Q5_K super-blocks (256 values, 176 bytes).</summary>
    Q5_K,
    /// <summary>ggml Q6_K super-blocks (256 values, 210 bytes).</summary>
    Q6_K,
}

/// <summary>Sizes of <see cref="TensorDType"/> elements.</summary>
internal static class TensorDTypes
{
    /// <summary>The kernel encoding of a dtype the kernels read in place (all but F16), or null.</summary>
    public static Kernels.WeightType? ToWeightType(TensorDType type) => type switch
    {
        TensorDType.F32 => Kernels.WeightType.F32,
        TensorDType.BF16 => Kernels.WeightType.BF16,
        TensorDType.Q8_0 => Kernels.WeightType.Q8_0,
        TensorDType.Q4_0 => Kernels.WeightType.Q4_0,
        TensorDType.Q4_K => Kernels.WeightType.Q4_K,
        TensorDType.Q5_K => Kernels.WeightType.Q5_K,
        TensorDType.Q6_K => Kernels.WeightType.Q6_K,
        _ => null,
    };

    /// <summary>Bytes needed for <paramref name="elements"/> values, or -1 when the count does not fill whole blocks.</summary>
    public static long ByteSize(TensorDType type, long elements) => type switch
    {
        TensorDType.F32 => checked(elements * 4),
        TensorDType.F16 or TensorDType.BF16 => checked(elements * 2),
        TensorDType.Q8_0 => elements % 32 == 0 ? checked(elements / 32 * 34) : -1,
        TensorDType.Q4_0 => elements % 32 == 0 ? checked(elements / 32 * 18) : -1,
        TensorDType.Q4_K => elements % 256 == 0 ? checked(elements / 256 * 144) : -1,
        TensorDType.Q5_K => elements % 256 == 0 ? checked(elements / 256 * 176) : -1,
        TensorDType.Q6_K => elements % 256 == 0 ? checked(elements / 256 * 210) : -1,
        _ => -1,
    };
}
