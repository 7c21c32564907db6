using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// The int8 kernels on 128 bits (Q8_0 here, the 4/5/6-bit types in <c>MatMul.KQuants.V128.cs</c>): ARM64 AdvSimd
    /// with SDOT (<c>Dp</c>) where present, x86 SSSE3 otherwise. One primitive, <see cref="DotI8"/>, gives the same
    /// four exact int32 lanes on every instruction set — lane i = Σ of the products of bytes 4i … 4i+3 (SDOT's
    /// definition) — so the float results of this path are identical on ARM64 with or without SDOT and on x86
    /// (with FMA): the x86 Vector128 test pass checks the numbers an ARM64 machine computes.
    /// </summary>
    internal static class Int8V128
    {
        /// <summary>The 128-bit int8 kernels run here (JIT-time constant); otherwise the int8 types take the scalar path.</summary>
        public static bool IsSupported => Vector128.IsHardwareAccelerated && (AdvSimd.Arm64.IsSupported || Ssse3.IsSupported);

        /// <summary>
        /// <c>acc + (lane i: Σ_{j=4i}^{4i+3} w[j]·x[j])</c>, exact. <paramref name="x"/> must lie in [−127, 127] (the
        /// activations do); <paramref name="w"/> may be any int8.
        /// ARM64 + Dp: one <c>sdot</c>. ARM64: <c>smull</c>, <c>smull2</c> (int16 products, |p| ≤ 128·127), two
        /// <c>saddlp</c> (pair sums to int32) and one <c>addp</c> (adjacent pairs → 4-sums). x86: the sign trick —
        /// <c>pmaddubsw(|w|, sign(x, w))</c> (pair sums ≤ 2·128·127 &lt; 2¹⁵, no saturation) then <c>pmaddwd</c> by 1.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> DotI8(Vector128<int> acc, Vector128<sbyte> w, Vector128<sbyte> x)
        {
            if (Dp.IsSupported) return Dp.DotProduct(acc, w, x);
            if (AdvSimd.Arm64.IsSupported)
            {
                Vector128<short> lo = AdvSimd.MultiplyWideningLower(w.GetLower(), x.GetLower());
                Vector128<short> hi = AdvSimd.MultiplyWideningUpper(w, x);
                return acc + AdvSimd.Arm64.AddPairwise(AdvSimd.AddPairwiseWidening(lo), AdvSimd.AddPairwiseWidening(hi));
            }
            if (Ssse3.IsSupported)
                return acc + Sse2.MultiplyAddAdjacent(Ssse3.MultiplyAddAdjacent(Ssse3.Abs(w), Ssse3.Sign(x, w)), Vector128.Create((short)1));
            throw new PlatformNotSupportedException(); // IsSupported is false: callers take the scalar path
        }

        /// <summary>A 32-element block: two <see cref="DotI8"/> into one set of 4 lanes (each ≤ 8·128·127, exact as float).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> BlockDot(Vector128<sbyte> w0, Vector128<sbyte> w1, sbyte* x) =>
            Vector128.ConvertToSingle(DotI8(DotI8(Vector128<int>.Zero, w0, Vector128.Load(x)), w1, Vector128.Load(x + 16)));

        /// <summary>
        /// <c>acc + a · s[lane]</c> with one rounding: ARM64 <c>fmla v.4s, v.4s, v.s[lane]</c> (no broadcast), else a
        /// broadcast and <see cref="Ops128.Fma"/>. <paramref name="lane"/> must be a constant at the call site.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> FmaLane(Vector128<float> acc, Vector128<float> a, Vector128<float> s, [ConstantExpected(Max = (byte)3)] byte lane) =>
            AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(acc, a, s, lane)
            : Ops128.Fma(a, Vector128.Create(s.GetElement(lane)), acc);

        /// <summary>
        /// The fp16 scales of 4 consecutive blocks (<paramref name="stride"/> bytes apart, scale first) times 4
        /// activation scales: the same float32 products as the scalar <c>BlockScale(block) * xs[b]</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> ScaleProducts(byte* block, int stride, float* xs) =>
            F16Row.ToSingle(Vector128.Create(*(ushort*)block, *(ushort*)(block + stride), *(ushort*)(block + 2 * stride), *(ushort*)(block + 3 * stride)).AsInt32())
            * Vector128.Load(xs);
    }

    /// <summary>
    /// Q8_0 on 128 bits (<see cref="Int8V128"/>): per block <c>acc += (float)(4 exact int32 lanes) · (dw · dx)</c>,
    /// blocks in order into one 4-lane accumulator, then the lane sum. The scale products are formed 4 blocks at a time
    /// (4 fp16 → f32 in one vector, one multiply) and enter the FMA by lane. Prefill runs the same row dot per token
    /// while the row is in L1, so every token's result equals its decode bit for bit.
    /// </summary>
    private static class Q8V128
    {
        /// <summary>Same quantizer as <see cref="QuantizeScalar"/> (bit for bit): max |x| of 8 vectors, round to even, narrow.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Quantize(float* x, int blocks, sbyte* q, float* scales)
        {
            for (int b = 0; b < blocks; b++, x += Q8_0.BlockSize, q += Q8_0.BlockSize)
            {
                Vector128<float> v0 = Vector128.Load(x), v1 = Vector128.Load(x + 4), v2 = Vector128.Load(x + 8), v3 = Vector128.Load(x + 12);
                Vector128<float> v4 = Vector128.Load(x + 16), v5 = Vector128.Load(x + 20), v6 = Vector128.Load(x + 24), v7 = Vector128.Load(x + 28);
                Vector128<float> m = Vector128.Max(
                    Vector128.Max(Vector128.Max(Vector128.Abs(v0), Vector128.Abs(v1)), Vector128.Max(Vector128.Abs(v2), Vector128.Abs(v3))),
                    Vector128.Max(Vector128.Max(Vector128.Abs(v4), Vector128.Abs(v5)), Vector128.Max(Vector128.Abs(v6), Vector128.Abs(v7))));
                float amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
                float scale = amax / 127f;
                var inv = Vector128.Create(InverseScale(scale));
                Vector128<short> s0 = Vector128.Narrow(Round(v0, inv), Round(v1, inv)), s1 = Vector128.Narrow(Round(v2, inv), Round(v3, inv));
                Vector128<short> s2 = Vector128.Narrow(Round(v4, inv), Round(v5, inv)), s3 = Vector128.Narrow(Round(v6, inv), Round(v7, inv));
                Vector128.Narrow(s0, s1).Store(q);
                Vector128.Narrow(s2, s3).Store(q + 16);
                scales[b] = scale;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<int> Round(Vector128<float> v, Vector128<float> inv) => Vector128.ConvertToInt32(Vector128.Round(v * inv));

        /// <summary>This width's row kernel for <see cref="RowsByTokens{TDot}"/>.</summary>
        public readonly struct RowDot : IQ8RowDot
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public static float Dot(byte* row, sbyte* xq, float* xs, int blocks) => Q8V128.Dot(row, xq, xs, blocks);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float Dot(byte* row, sbyte* xq, float* xs, int blocks)
        {
            const int B = Q8_0.BlockBytes;
            var acc = Vector128<float>.Zero;
            int b = 0;
            for (; b + 4 <= blocks; b += 4)
            {
                byte* g = row + b * B;
                sbyte* x = xq + b * Q8_0.BlockSize;
                Vector128<float> s = Int8V128.ScaleProducts(g, B, xs + b);
                acc = Int8V128.FmaLane(acc, Block(g, x), s, 0);
                acc = Int8V128.FmaLane(acc, Block(g + B, x + 32), s, 1);
                acc = Int8V128.FmaLane(acc, Block(g + 2 * B, x + 64), s, 2);
                acc = Int8V128.FmaLane(acc, Block(g + 3 * B, x + 96), s, 3);
            }
            for (; b < blocks; b++)
            {
                byte* block = row + b * B;
                acc = Int8V128.FmaLane(acc, Block(block, xq + b * Q8_0.BlockSize), Vector128.Create(BlockScale(block) * xs[b]), 0);
            }
            return Vector128.Sum(acc);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> Block(byte* block, sbyte* x) =>
            Int8V128.BlockDot(Vector128.Load((sbyte*)block + 2), Vector128.Load((sbyte*)block + 18), x);
    }
}
