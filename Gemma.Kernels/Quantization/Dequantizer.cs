using System.Buffers.Binary;

namespace Gemma.Kernels;

/// <summary>
/// Scalar reference dequantizers (ggml block formats → float32) following llama.cpp's
/// <c>dequantize_row_*</c> in <c>ggml/src/ggml-quants.c</c>, with the block layouts of
/// <c>ggml/src/ggml-common.h</c>. Used to load formats the kernels cannot read in place; the float
/// expressions are evaluated in the same order as ggml's (no fused multiply-add), so results match it.
/// All multi-byte fields are little-endian; fp16 is IEEE half precision.
/// </summary>
internal static partial class Dequantizer
{
    /// <summary>Elements per Q4_0 block.</summary>
    public const int Q4_0BlockSize = 32;
    /// <summary>Bytes per Q4_0 block: <c>fp16 d; uint8 qs[16]</c>.</summary>
    public const int Q4_0BlockBytes = 18;
    /// <summary>Elements per k-quant super-block (ggml's QK_K).</summary>
    public const int QK_K = 256;
    /// <summary>Bytes per Q2_K block: <c>uint8 scales[16]; uint8 qs[64]; fp16 d; fp16 dmin</c>.</summary>
    public const int Q2_KBlockBytes = 84;
    /// <summary>Bytes per Q3_K block: <c>uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d</c>.</summary>
    public const int Q3_KBlockBytes = 110;
    /// <summary>Bytes per Q4_K block: <c>fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128]</c>.</summary>
    public const int Q4_KBlockBytes = 144;
    /// <summary>Bytes per Q5_K block: <c>fp16 d; fp16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]</c>.</summary>
    public const int Q5_KBlockBytes = 176;
    /// <summary>Elements per Q4_1/Q5_0/Q5_1 block.</summary>
    public const int Q4_1BlockSize = 32;
    /// <summary>Bytes per Q4_1 block: <c>fp16 d; fp16 m; uint8 qs[16]</c>.</summary>
    public const int Q4_1BlockBytes = 20;
    /// <summary>Bytes per Q5_0 block: <c>fp16 d; uint8 qh[4]; uint8 qs[16]</c>.</summary>
    public const int Q5_0BlockBytes = 22;
    /// <summary>Bytes per Q5_1 block: <c>fp16 d; fp16 m; uint8 qh[4]; uint8 qs[16]</c>.</summary>
    public const int Q5_1BlockBytes = 24;
    /// <summary>Bytes per Q6_K block: <c>uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d</c>.</summary>
    public const int Q6_KBlockBytes = 210;

    private static float Fp16(ReadOnlySpan<byte> bytes) => F16Row.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes));

    private static int CheckSizes(int srcBytes, int dstLength, int blockSize, int blockBytes, string format)
    {
        if (dstLength % blockSize != 0)
            throw new ArgumentException($"{format} needs a multiple of {blockSize} elements, got {dstLength}.", "destination");
        int blocks = dstLength / blockSize;
        if (srcBytes < (long)blocks * blockBytes)
            throw new ArgumentException($"{format}: {dstLength} elements need {(long)blocks * blockBytes} bytes, source has {srcBytes}.", "source");
        return blocks;
    }

    /// <summary>IEEE fp16 (little-endian) → float32, exact. Fills all of <paramref name="destination"/>.</summary>
    public static void DequantizeF16(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int n = CheckSizes(source.Length, destination.Length, 1, 2, "F16");
        for (int i = 0; i < n; i++) destination[i] = Fp16(source.Slice(2 * i));
    }

    /// <summary>Q8_0 → float32: <c>y = q · d</c> per block of 32 (<c>dequantize_row_q8_0</c>). Fills all of <paramref name="destination"/>.</summary>
    public static void DequantizeQ8_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, Q8_0.BlockSize, Q8_0.BlockBytes, "Q8_0");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q8_0.BlockBytes, Q8_0.BlockBytes);
            Span<float> y = destination.Slice(i * Q8_0.BlockSize, Q8_0.BlockSize);
            float d = Fp16(x);
            for (int j = 0; j < Q8_0.BlockSize; j++) y[j] = (sbyte)x[2 + j] * d;
        }
    }

    /// <summary>
    /// Q4_0 → float32 (<c>dequantize_row_q4_0</c>). Block: <c>fp16 d</c>, then 16 bytes; byte j holds element j
    /// in its low nibble and element j+16 in its high nibble; value = (nibble − 8) · d.
    /// </summary>
    public static void DequantizeQ4_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, Q4_0BlockSize, Q4_0BlockBytes, "Q4_0");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q4_0BlockBytes, Q4_0BlockBytes);
            Span<float> y = destination.Slice(i * Q4_0BlockSize, Q4_0BlockSize);
            float d = Fp16(x);
            ReadOnlySpan<byte> qs = x.Slice(2, 16);
            for (int j = 0; j < 16; j++)
            {
                y[j] = ((qs[j] & 0x0F) - 8) * d;
                y[j + 16] = ((qs[j] >> 4) - 8) * d;
            }
        }
    }
}
