using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// Q8_0 weights × float activations, the llama.cpp way: activations are quantized per 32-element block to int8
/// with a float32 scale <c>dx = max|x| / 127</c> (<c>q = round-to-even(x / dx)</c>), then each block contributes
/// <c>(Σ qw·qx) · (dw · dx)</c> with an exact integer dot product. Compared with dequantizing the weights this adds
/// the activation rounding error (≤ dx/2 per element, about 0.4 % of the block's largest value), the same error
/// llama.cpp makes; in exchange the inner loop reads 34 bytes per 32 weights and multiplies bytes.
/// </summary>
internal static unsafe partial class MatMul
{
    /// <summary>Quantizes <paramref name="n"/> rows of <paramref name="cols"/> floats (cols a multiple of 32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeActivations(float* x, int n, int cols, sbyte* q, float* scales)
    {
        int blocks = n * (cols / Q8_0.BlockSize);
        if (Vector512.IsHardwareAccelerated) Q8V512.Quantize(x, blocks, q, scales);
        else if (Vector256.IsHardwareAccelerated) Q8V256.Quantize(x, blocks, q, scales);
        else if (Vector128.IsHardwareAccelerated) Q8V128.Quantize(x, blocks, q, scales);
        else QuantizeScalar(x, blocks, q, scales);
    }

    /// <summary>Scalar reference of the activation quantizer; the SIMD quantizers must match it bit for bit.</summary>
    internal static void QuantizeScalar(float* x, int blocks, sbyte* q, float* scales)
    {
        for (int b = 0; b < blocks; b++, x += Q8_0.BlockSize, q += Q8_0.BlockSize)
        {
            float amax = 0;
            for (int j = 0; j < Q8_0.BlockSize; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float scale = amax / 127f, inv = InverseScale(scale);
            for (int j = 0; j < Q8_0.BlockSize; j++) q[j] = (sbyte)(int)MathF.Round(x[j] * inv); // |x·inv| ≤ 127, ties to even
            scales[b] = scale;
        }
    }

    /// <summary>Inverse scale used by every quantizer: <c>1 / (amax / 127)</c>, 0 for an all-zero block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float InverseScale(float scale) => scale != 0 ? 1f / scale : 0f;

    /// <summary>fp16 block scale of a Q8_0 block as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float BlockScale(byte* block) => HalfToSingle(Unsafe.ReadUnaligned<ushort>(block));

    /// <summary>Exact fp16 → float32 (<see cref="F16Row.ToSingle(ushort)"/>: branch-free; .NET's <c>(float)Half</c> is slow).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float HalfToSingle(ushort h) => F16Row.ToSingle(h);

    /// <summary>Exact integer dot product of one 32-element block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int BlockDotScalar(sbyte* w, sbyte* x)
    {
        int sum = 0;
        for (int j = 0; j < Q8_0.BlockSize; j++) sum += w[j] * x[j];
        return sum;
    }

    /// <summary>Scalar reference of the quantized dot product: <c>Σ_b (float)(Σ qw·qx) · (dw · dx)</c>, blocks in order.</summary>
    internal static float DotQ8Scalar(byte* row, sbyte* xq, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* block = row + b * Q8_0.BlockBytes;
            sum += BlockDotScalar((sbyte*)block + 2, xq + b * Q8_0.BlockSize) * (BlockScale(block) * xs[b]);
        }
        return sum;
    }

    /// <summary>Output rows [r0, r1) for all tokens from pre-quantized activations.</summary>
    private static void RunQ8(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
    {
        if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported) Q8V512.Range(w, xq, xs, y, n, r0, r1);
        else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported) RowsByTokens<Q8V256.RowDot>(w, xq, xs, y, n, r0, r1);
        else if (Int8V128.IsSupported) Q8V128.Range<Q8_0Block>(w, xq, xs, y, n, r0, r1);
        else RowsByTokens<ScalarQ8RowDot>(w, xq, xs, y, n, r0, r1);
    }

    /// <summary>One Q8_0 weight row · one token's int8 activations and block scales: a width's row kernel.</summary>
    private interface IQ8RowDot
    {
        static abstract float Dot(byte* row, sbyte* xq, float* xs, int blocks);
    }

    private readonly struct ScalarQ8RowDot : IQ8RowDot
    {
        public static float Dot(byte* row, sbyte* xq, float* xs, int blocks) => DotQ8Scalar(row, xq, xs, blocks);
    }

    /// <summary>Output rows [r0, r1) for all n tokens, one row kernel call per (row, token): the row stays in L1.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // a kernel root: see MatMul.cs
    private static void RowsByTokens<TDot>(in WeightMatrix w, sbyte* xq, float* xs, float* y, int n, int r0, int r1)
        where TDot : struct, IQ8RowDot
    {
        int blocks = w.Cols / Q8_0.BlockSize;
        for (int r = r0; r < r1; r++)
            for (int t = 0; t < n; t++)
                y[(long)t * w.Rows + r] = TDot.Dot(w.Row(r), xq + (long)t * w.Cols, xs + (long)t * blocks, blocks);
    }

    /// <summary>
    /// Per-thread scratch for quantized activations, grown on demand and then reused: no allocation per call in
    /// steady state. Pinned (POH) so raw pointers into it stay valid while workers read it.
    /// </summary>
    private static class Q8Activations
    {
        [ThreadStatic] private static byte[]? t_buffer;

        /// <summary>Q8_0 activations of n tokens: int8 values [n, cols], scales [n, cols / 32].</summary>
        public static void Rent(int n, int cols, out sbyte* q, out float* scales)
        {
            long qBytes = ((long)n * cols + 63) & ~63L;
            long blocks = (long)n * (cols / Q8_0.BlockSize);
            byte* p = Scratch.Get(ref t_buffer, qBytes + blocks * sizeof(float));
            q = (sbyte*)p;
            scales = (float*)(p + qBytes);
        }
    }

    /// <summary>Per-thread scratch for Q8_K activations (see <see cref="Q8Activations"/>).</summary>
    private static class Q8KActivations
    {
        [ThreadStatic] private static byte[]? t_buffer;

        /// <summary>Q8_K activations of n tokens: int8 values [n, cols], scales [n, cols / 256], bsums [n, cols / 16].</summary>
        public static void Rent(int n, int cols, out Q8K x)
        {
            long qBytes = ((long)n * cols + 63) & ~63L;
            long dBytes = ((long)n * (cols / QK) * sizeof(float) + 63) & ~63L;
            byte* p = Scratch.Get(ref t_buffer, qBytes + dBytes + (long)n * (cols / 16) * sizeof(short));
            x = new Q8K((sbyte*)p, (float*)(p + qBytes), (short*)(p + qBytes + dBytes));
        }
    }

    private static class Scratch
    {
        /// <summary>The pinned buffer in <paramref name="slot"/>, replaced by a larger one when shorter than <paramref name="bytes"/>.</summary>
        public static byte* Get(ref byte[]? slot, long bytes)
        {
            byte[]? buffer = slot;
            if (buffer is null || buffer.Length < bytes)
                slot = buffer = GC.AllocateUninitializedArray<byte>((int)Math.Max(bytes, 4096), pinned: true);
            return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        }
    }
}
