using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// 4/5/6-bit row dots on 128 bits (<see cref="Int8V128"/>: SDOT on ARM64, SSSE3 on x86). With signed-byte dot
    /// products the weights need no unsigned trick: the offsets of Q4_0 (q − 8) and Q6_K (q − 32) are subtracted in the
    /// bytes, and Q4_K/Q5_K's q (≤ 31) is already a valid int8. Q4_0 is <see cref="Q8V128"/>'s kernel (decode and GEMM)
    /// on the unpacked nibbles. K-quants (Q8_K activations): the lanes times the sub-block scales summed in int32 over the
    /// super-block, then one horizontal integer add (<c>addv</c>) and the scalar reference's float step
    /// <c>sum += (d·d8)·isum − (dmin·d8)·msum</c> — bit-identical to <see cref="DotQ4_KScalar"/>, <see cref="DotQ6_KScalar"/>
    /// and the Vector128 GEMM (<see cref="KQuantGemmV128"/>), so a token's result is the same alone and in a batch. Per
    /// super-block that is ≈ 6 scalar float operations against 16 SDOTs and the unpacking: on an ARM core a few percent;
    /// under qemu (every float lane a softfloat call) fewer float lanes than the 4-lane convert + FMA it replaces.
    /// </summary>
    private static class KQuantV128
    {
        /// <summary>Q4_0: the Q8_0 kernel's block-group order on the unpacked nibbles (<see cref="Q8V128"/>), shared with its GEMM.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float DotQ4_0(byte* row, sbyte* xq, float* xs, int blocks) => Q8V128.Dot<Q4_0Block>(row, xq, xs, blocks);

        /// <summary>
        /// Sub-block j (32 values) of a Q4_K/Q5_K super-block as bytes q ∈ [0, 15] or [0, 31]: nibble group j/2 of
        /// <paramref name="qs"/> (32 bytes), low nibbles for even j; Q5_K's fifth bit is bit j of qh (its 32 bytes in
        /// <paramref name="qh0"/>, <paramref name="qh1"/>). The row dots and the GEMM's panel unpacker share it.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SubBlockQ45(byte* qs, Vector128<ushort> qh0, Vector128<ushort> qh1, int j, bool five,
                                       out Vector128<byte> q0, out Vector128<byte> q1)
        {
            var mask = Vector128.Create((byte)0x0F);
            byte* g = qs + 32 * (j / 2);
            Vector128<byte> raw0 = Vector128.Load(g), raw1 = Vector128.Load(g + 16);
            if ((j & 1) != 0) { raw0 = Vector128.ShiftRightLogical(raw0, 4); raw1 = Vector128.ShiftRightLogical(raw1, 4); }
            q0 = raw0 & mask;
            q1 = raw1 & mask;
            if (five)
            {
                // (qh >> j) & 1, moved to bit 4 (a 16-bit shift keeps each byte's bit 0 inside its byte).
                var one = Vector128.Create((byte)1);
                q0 |= Vector128.ShiftLeft((Vector128.ShiftRightLogical(qh0, j).AsByte() & one).AsUInt16(), 4).AsByte();
                q1 |= Vector128.ShiftLeft((Vector128.ShiftRightLogical(qh1, j).AsByte() & one).AsUInt16(), 4).AsByte();
            }
        }

        /// <summary>
        /// Q4_K (<paramref name="five"/> false) or Q5_K on Q8_K: per sub-block j four exact int32 lanes (two <see
        /// cref="Int8V128.DotI8"/>) times the 6-bit scale, summed in int32 over the super-block; the
        /// mins as a scalar integer <c>Σ m_j·(bsums[2j] + bsums[2j+1])</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ45_K(byte* row, Q8K x, int superBlocks, bool five)
        {
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            float sum = 0;
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * blockBytes;
                UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
                Vector128<ushort> qh0 = five ? Vector128.Load(block + 16).AsUInt16() : default;
                Vector128<ushort> qh1 = five ? Vector128.Load(block + 32).AsUInt16() : default;
                byte* qs = block + (five ? 48 : 16);
                short* bs = x.BSums + 16 * i;
                Vector128<int> isum = Vector128<int>.Zero;
                int msum = 0;
                for (int j = 0; j < 8; j++)
                {
                    SubBlockQ45(qs, qh0, qh1, j, five, out Vector128<byte> q0, out Vector128<byte> q1);
                    sbyte* xj = x.Q + i * QK + 32 * j;
                    Vector128<int> dot = Int8V128.DotI8(Int8V128.DotI8(Vector128<int>.Zero, q0.AsSByte(), Vector128.Load(xj)), q1.AsSByte(), Vector128.Load(xj + 16));
                    isum = Int8V128.MultiplyAdd(isum, dot, Vector128.Create((int)(byte)(sc >> (8 * j))));
                    msum += (byte)(m >> (8 * j)) * (bs[2 * j] + bs[2 * j + 1]);
                }
                // The scalar reference's float step on the exact sums (Vector128.Sum of int32 lanes is exact).
                float d8 = x.D[i];
                sum += BlockScale(block) * d8 * Vector128.Sum(isum) - BlockScale(block + 2) * d8 * msum;
            }
            return sum;
        }

        /// <summary>
        /// Q6_K on Q8_K: q − 32 ∈ [−32, 31] in the bytes (a valid int8, so no offset term), each 16-byte half one 16-group
        /// with its own int8 scale, summed in int32 over the super-block; one FMA by <c>d·d8</c> per super-block.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ6_K(byte* row, Q8K x, int superBlocks)
        {
            float sum = 0;
            var mask = Vector128.Create((byte)0x0F);
            var three = Vector128.Create((byte)3);
            var offset = Vector128.Create((byte)32);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * Dequantizer.Q6_KBlockBytes;
                Vector128<int> isum = Vector128<int>.Zero;
                for (int h = 0; h < 2; h++)
                {
                    byte* ql = block + 64 * h;
                    Vector128<ushort> qh0 = Vector128.Load(block + 128 + 32 * h).AsUInt16(), qh1 = Vector128.Load(block + 144 + 32 * h).AsUInt16();
                    sbyte* sc = (sbyte*)block + 192 + 8 * h;
                    for (int k = 0; k < 4; k++)
                    {
                        // Sub-block k: nibble k/2 of ql[32(k&1) + l], bits 2k, 2k+1 of qh[l].
                        Vector128<byte> raw0 = Vector128.Load(ql + 32 * (k & 1)), raw1 = Vector128.Load(ql + 32 * (k & 1) + 16);
                        if ((k >> 1) != 0) { raw0 = Vector128.ShiftRightLogical(raw0, 4); raw1 = Vector128.ShiftRightLogical(raw1, 4); }
                        Vector128<byte> hi0 = Vector128.ShiftRightLogical(qh0, 2 * k).AsByte() & three;
                        Vector128<byte> hi1 = Vector128.ShiftRightLogical(qh1, 2 * k).AsByte() & three;
                        Vector128<byte> q0 = ((raw0 & mask) | Vector128.ShiftLeft(hi0.AsUInt16(), 4).AsByte()) - offset;
                        Vector128<byte> q1 = ((raw1 & mask) | Vector128.ShiftLeft(hi1.AsUInt16(), 4).AsByte()) - offset;
                        sbyte* xk = x.Q + i * QK + 128 * h + 32 * k;
                        Vector128<int> g0 = Int8V128.DotI8(Vector128<int>.Zero, q0.AsSByte(), Vector128.Load(xk));
                        Vector128<int> g1 = Int8V128.DotI8(Vector128<int>.Zero, q1.AsSByte(), Vector128.Load(xk + 16));
                        isum = Int8V128.MultiplyAdd(Int8V128.MultiplyAdd(isum, g0, Vector128.Create((int)sc[2 * k])), g1, Vector128.Create((int)sc[2 * k + 1]));
                    }
                }
                sum += BlockScale(block + 208) * x.D[i] * Vector128.Sum(isum);
            }
            return sum;
        }
    }
}
