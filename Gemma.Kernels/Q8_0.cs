namespace Gemma.Kernels;

/// <summary>ggml's Q8_0 block format constants: <c>struct { fp16 d; int8 qs[32]; }</c>, value = d * q.</summary>
internal static class Q8_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;
    /// <summary>Bytes per block: a 2-byte fp16 scale then 32 int8 values.</summary>
    public const int BlockBytes = 34;
}
