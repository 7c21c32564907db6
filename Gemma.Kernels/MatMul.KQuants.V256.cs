using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// 4/5/6-bit row dots on 256 bits (AVX2): 32 weights per vector. Q4_0 (Q8_0 activations): vpmaddubsw(q, qx) +
    /// vpmaddwd give 8 exact int32 lanes, FMA'd with the block's broadcast float factor. K-quants (Q8_K activations):
    /// the super-block summed in int32 with the sub-block scales in vpmaddwd, one float multiply-add per super-block and
    /// token, up to 4 tokens per pass over the row. Same integers as <see cref="KQuantV512"/> and the scalar references.
    /// </summary>
    private static class KQuantV256
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ4_0(byte* row, sbyte* xq, float* xs, int blocks)
        {
            const int B = Dequantizer.Q4_0BlockBytes;
            var acc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            var mask = Vector256.Create((byte)0x0F);
            var eight = Vector256.Create((byte)8);
            for (int b = 0; b < blocks; b++)
            {
                byte* block = row + b * B;
                Vector128<byte> raw = Vector128.Load(block + 2);
                Vector256<byte> q = Vector256.Create(raw, Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask;
                Vector256<sbyte> x = Vector256.Load(xq + b * 32);
                Vector256<short> p16 = Avx2.MultiplyAddAdjacent(q, x) - Avx2.MultiplyAddAdjacent(eight, x);
                Vector256<int> p32 = Avx2.MultiplyAddAdjacent(p16, ones);
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p32), Vector256.Create(BlockScale(block) * xs[b]), acc);
            }
            return Vector256.Sum(acc);
        }

        /// <summary>
        /// Q4_K (<typeparamref name="TFive"/> false) or Q5_K on Q8_K, <c>TN.N</c> tokens: sub-block j (32 elements) per
        /// vector, unpacked once for all tokens; per token vpmaddubsw, vpmaddwd by the broadcast 6-bit scale, vpaddd
        /// into 8 int32 lanes over the super-block, then one convert and FMA by <c>d·d8</c> and one by <c>−dmin·d8</c>
        /// for the mins (vpmaddwd of the 16 bsums with the mins).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DotQ45_K<TN, TFive>(byte* row, Q8K x, int cols, float* y, long stride)
            where TN : struct, ITokenCount where TFive : struct, IFlag
        {
            int n = TN.N, superBlocks = cols / QK;
            bool five = TFive.Value;
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            long xStride = cols, dStride = superBlocks, bStride = cols / 16;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var mask = Vector256.Create((byte)0x0F);
            var onesB = Vector256.Create((byte)1);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * blockBytes;
                UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
                Vector256<ushort> qh = five ? Vector256.Load(block + 16).AsUInt16() : default;
                byte* qs = block + (five ? 48 : 16);
                sbyte* xq = x.Q + i * QK;
                Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
                for (int j = 0; j < 8; j++)
                {
                    Vector256<byte> raw = Vector256.Load(qs + 32 * (j / 2));
                    Vector256<byte> q = ((j & 1) == 0 ? raw : Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask;
                    if (five)
                        q |= Vector256.ShiftLeft((Vector256.ShiftRightLogical(qh, j).AsByte() & onesB).AsUInt16(), 4).AsByte();
                    var s = Vector256.Create((short)(byte)(sc >> (8 * j)));
                    sbyte* xj = xq + 32 * j;
                    i0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xj)), s);
                    if (n > 1) i1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xj + xStride)), s);
                    if (n > 2) i2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xj + 2 * xStride)), s);
                    if (n > 3) i3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xj + 3 * xStride)), s);
                }
                // m_j for both 16-halves of sub-block j: [m0, m0, m1, m1, …] as int16, against the 16 bsums.
                Vector128<byte> mb = Vector128.CreateScalar(m).AsByte();
                Vector256<short> mins16 = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(mb, mb));
                float d = BlockScale(block), dmin = BlockScale(block + 2);
                float* d8 = x.D + i;
                short* bs = x.BSums + 16 * i;
                a0 = Finish(i0, mins16, bs, d * d8[0], dmin * d8[0], a0);
                if (n > 1) a1 = Finish(i1, mins16, bs + bStride, d * d8[dStride], dmin * d8[dStride], a1);
                if (n > 2) a2 = Finish(i2, mins16, bs + 2 * bStride, d * d8[2 * dStride], dmin * d8[2 * dStride], a2);
                if (n > 3) a3 = Finish(i3, mins16, bs + 3 * bStride, d * d8[3 * dStride], dmin * d8[3 * dStride], a3);
            }
            y[0] = Vector256.Sum(a0);
            if (n > 1) y[stride] = Vector256.Sum(a1);
            if (n > 2) y[2 * stride] = Vector256.Sum(a2);
            if (n > 3) y[3 * stride] = Vector256.Sum(a3);
        }

        /// <summary><c>acc + (float)isum · dd − (float)(bsums · mins16) · dm</c>: one token's Q4_K/Q5_K super-block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Finish(Vector256<int> isum, Vector256<short> mins16, short* bsums, float dd, float dm, Vector256<float> acc)
        {
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum), Vector256.Create(dd), acc);
            Vector256<int> msum = Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), mins16);
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(msum), Vector256.Create(-dm), acc);
        }

        /// <summary>
        /// Q6_K on Q8_K, <c>TN.N</c> tokens: sub-block k of half h per vector (two 16-groups), unsigned q ∈ [0, 63];
        /// the groups' int8 scales as int16 pairs picked per 128-bit half by vpermd; per token the offset
        /// <c>32·Σ sc·bsums</c> is subtracted in int32, then one convert and FMA by <c>d·d8</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DotQ6_K<TN>(byte* row, Q8K x, int cols, float* y, long stride) where TN : struct, ITokenCount
        {
            int n = TN.N, superBlocks = cols / QK;
            long xStride = cols, dStride = superBlocks, bStride = cols / 16;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var mask = Vector256.Create((byte)0x0F);
            var three = Vector256.Create((byte)3);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * Dequantizer.Q6_KBlockBytes;
                Vector256<short> sc16 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)block + 192));
                // As int32 lanes, each holding one scale twice (an int16 pair): lo = groups 0–3 | 8–11, hi = 4–7 | 12–15.
                Vector256<int> lo = Avx2.UnpackLow(sc16, sc16).AsInt32(), hi = Avx2.UnpackHigh(sc16, sc16).AsInt32();
                sbyte* xq = x.Q + i * QK;
                Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
                for (int h = 0; h < 2; h++)
                {
                    byte* ql = block + 64 * h;
                    Vector256<ushort> qh = Vector256.Load(block + 128 + 32 * h).AsUInt16();
                    for (int k = 0; k < 4; k++)
                    {
                        // Sub-block k: nibble k/2 of ql[32(k&1) + l], bits 2k, 2k+1 of qh[l]; groups 8h + 2k, 8h + 2k + 1.
                        Vector256<byte> raw = Vector256.Load(ql + 32 * (k & 1));
                        Vector256<byte> low = ((k >> 1) == 0 ? raw : Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask;
                        Vector256<byte> high = Vector256.ShiftRightLogical(qh, 2 * k).AsByte() & three;
                        Vector256<byte> q = low | Vector256.ShiftLeft(high.AsUInt16(), 4).AsByte();
                        int lane = 4 * h + 2 * (k & 1);
                        Vector256<short> s = Avx2.PermuteVar8x32(k < 2 ? lo : hi, Vector256.Create(Vector128.Create(lane), Vector128.Create(lane + 1))).AsInt16();
                        sbyte* xk = xq + 128 * h + 32 * k;
                        i0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xk)), s);
                        if (n > 1) i1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xk + xStride)), s);
                        if (n > 2) i2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xk + 2 * xStride)), s);
                        if (n > 3) i3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(xk + 3 * xStride)), s);
                    }
                }
                float d = BlockScale(block + 208);
                float* d8 = x.D + i;
                short* bs = x.BSums + 16 * i;
                a0 = Finish6(i0, sc16, bs, d * d8[0], a0);
                if (n > 1) a1 = Finish6(i1, sc16, bs + bStride, d * d8[dStride], a1);
                if (n > 2) a2 = Finish6(i2, sc16, bs + 2 * bStride, d * d8[2 * dStride], a2);
                if (n > 3) a3 = Finish6(i3, sc16, bs + 3 * bStride, d * d8[3 * dStride], a3);
            }
            y[0] = Vector256.Sum(a0);
            if (n > 1) y[stride] = Vector256.Sum(a1);
            if (n > 2) y[2 * stride] = Vector256.Sum(a2);
            if (n > 3) y[3 * stride] = Vector256.Sum(a3);
        }

        /// <summary><c>acc + (float)(isum − 32·Σ sc·bsums) · dd</c>: one token's Q6_K super-block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Finish6(Vector256<int> isum, Vector256<short> sc16, short* bsums, float dd, Vector256<float> acc)
        {
            Vector256<int> offset = Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), sc16), 5);
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum - offset), Vector256.Create(dd), acc);
        }
    }
}
