using System.Buffers.Binary;

namespace Gemma.Kernels;

// The other blocks of 32 (ggml-common.h block_q4_1, block_q5_0, block_q5_1): byte j of qs holds element j in
// its low nibble and element j+16 in its high nibble; Q5 adds a fifth bit per element from the 32-bit qh
// (bit j for element j, bit j+16 for element j+16).
internal static partial class Dequantizer
{
    /// <summary>Q4_1 → float32 (<c>dequantize_row_q4_1</c>): value = q·d + m with 4-bit q.</summary>
    public static void DequantizeQ4_1(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, Q4_1BlockSize, Q4_1BlockBytes, "Q4_1");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q4_1BlockBytes, Q4_1BlockBytes);
            Span<float> y = destination.Slice(i * 32, 32);
            float d = Fp16(x), m = Fp16(x.Slice(2));
            ReadOnlySpan<byte> qs = x.Slice(4, 16);
            for (int j = 0; j < 16; j++)
            {
                y[j] = (qs[j] & 0x0F) * d + m;
                y[j + 16] = (qs[j] >> 4) * d + m;
            }
        }
    }

    /// <summary>Q5_0 → float32 (<c>dequantize_row_q5_0</c>): value = (q − 16)·d with 5-bit q.</summary>
    public static void DequantizeQ5_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, Q4_1BlockSize, Q5_0BlockBytes, "Q5_0");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q5_0BlockBytes, Q5_0BlockBytes);
            Span<float> y = destination.Slice(i * 32, 32);
            float d = Fp16(x);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x.Slice(2));
            ReadOnlySpan<byte> qs = x.Slice(6, 16);
            for (int j = 0; j < 16; j++)
            {
                int x0 = ((qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10)) - 16;
                int x1 = ((qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - 16;
                y[j] = x0 * d;
                y[j + 16] = x1 * d;
            }
        }
    }

    /// <summary>Q5_1 → float32 (<c>dequantize_row_q5_1</c>): value = q·d + m with 5-bit q.</summary>
    public static void DequantizeQ5_1(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = CheckSizes(source.Length, destination.Length, Q4_1BlockSize, Q5_1BlockBytes, "Q5_1");
        for (int i = 0; i < blocks; i++)
        {
            ReadOnlySpan<byte> x = source.Slice(i * Q5_1BlockBytes, Q5_1BlockBytes);
            Span<float> y = destination.Slice(i * 32, 32);
            float d = Fp16(x), m = Fp16(x.Slice(2));
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x.Slice(4));
            ReadOnlySpan<byte> qs = x.Slice(8, 16);
            for (int j = 0; j < 16; j++)
            {
                int x0 = (qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
                int x1 = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                y[j] = x0 * d + m;
                y[j + 16] = x1 * d + m;
            }
        }
    }
}
