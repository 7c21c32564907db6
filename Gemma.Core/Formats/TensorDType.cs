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
}

/// <summary>Sizes of <see cref="TensorDType"/> elements.</summary>
internal static class TensorDTypes
{
    /// <summary>Bytes needed for <paramref name="elements"/> values, or -1 when the count does not fill whole blocks.</summary>
    public static long ByteSize(TensorDType type, long elements) => type switch
    {
        TensorDType.F32 => checked(elements * 4),
        TensorDType.F16 or TensorDType.BF16 => checked(elements * 2),
        TensorDType.Q8_0 => elements % 32 == 0 ? checked(elements / 32 * 34) : -1,
        _ => -1,
    };
}
