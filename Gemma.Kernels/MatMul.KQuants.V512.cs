using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// 4/5/6-bit row dots on 512 bits (AVX-512BW): 64 weights per step — two 32-element activation blocks, one per
    /// vector half. Nibbles are split by a per-half variable shift (vpsrlvw: 0 for one half, 4 for the other) and a
    /// byte mask; vpmaddubsw(q, qx) + vpmaddwd give 16 int32 lanes, 8 per block, converted exactly and multiplied by
    /// the block's float factor picked per half with vpermps.
    /// </summary>
    private static class KQuantV512
    {
        /// <summary>Lanes 0–7 pick element <paramref name="a"/>, lanes 8–15 element <paramref name="b"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Pick(int a, int b) => Vector512.Create(Vector256.Create(a), Vector256.Create(b));

        /// <summary>8 unsigned bytes (low to high) as 8 float32 lanes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> BytesToSingle(ulong bytes) =>
            Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Vector128.CreateScalar(bytes).AsByte()));

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ4_0(byte* row, sbyte* xq, float* xs, int blocks)
        {
            const int B = Dequantizer.Q4_0BlockBytes;
            var acc = Vector512<float>.Zero;
            var ones = Vector512.Create((short)1);
            var mask = Vector512.Create((byte)0x0F);
            var eight = Vector512.Create((byte)8);
            // Quarters: block b low nibbles (elements 0-15), high nibbles (16-31), then block b+1 the same.
            var shifts = Vector512.Create(Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)),
                                          Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4)));
            int b = 0;
            for (; b + 2 <= blocks; b += 2)
            {
                byte* b0 = row + b * B, b1 = b0 + B;
                Vector128<byte> q0 = Vector128.Load(b0 + 2), q1 = Vector128.Load(b1 + 2);
                Vector512<byte> raw = Vector512.Create(Vector256.Create(q0, q0), Vector256.Create(q1, q1));
                Vector512<byte> q = Avx512BW.ShiftRightLogicalVariable(raw.AsUInt16(), shifts).AsByte() & mask;
                Vector512<sbyte> x = Vector512.Load(xq + b * 32);
                Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(q, x) - Avx512BW.MultiplyAddAdjacent(eight, x);
                Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, ones);
                var scale = Vector512.Create(Vector256.Create(BlockScale(b0) * xs[b]), Vector256.Create(BlockScale(b1) * xs[b + 1]));
                acc = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), scale, acc);
            }
            float sum = Vector512.Sum(acc);
            if (b < blocks) sum += DotQ4_0Scalar(row + b * B, xq + b * 32, xs + b, 1);
            return sum;
        }

        /// <summary>
        /// Q4_K (<paramref name="five"/> false) or Q5_K: nibble group k holds sub-blocks 2k (low) and 2k+1 (high). The
        /// minimum term is one 8-lane FMA per super-block with the per-call <see cref="BlockSums"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ45_K(byte* row, sbyte* xq, float* xs, float* xsums, int superBlocks, bool five)
        {
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            var acc = Vector512<float>.Zero;
            var accMin = Vector256<float>.Zero;
            var ones = Vector512.Create((short)1);
            var onesB = Vector512.Create((byte)1);
            var mask = Vector512.Create((byte)0x0F);
            var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * blockBytes;
                UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
                // ggml's d1 = d·sc times the activation scale: one factor per sub-block; m1 = dmin·m times dx·Σqx.
                Vector512<float> coef = (Vector256.Create(BlockScale(block)) * BytesToSingle(sc) * Vector256.Load(xs + i * 8)).ToVector512Unsafe();
                accMin = Vector256.FusedMultiplyAdd(Vector256.Create(BlockScale(block + 2)) * BytesToSingle(m), Vector256.Load(xsums + i * 8), accMin);
                Vector512<ushort> qh = five ? Vector512.Create(Vector256.Load(block + 16), Vector256.Load(block + 16)).AsUInt16() : default;
                byte* qs = block + (five ? 48 : 16);
                sbyte* x0 = xq + i * QK;
                for (int k = 0; k < 4; k++)
                {
                    Vector256<byte> raw = Vector256.Load(qs + 32 * k);
                    Vector512<byte> q = Avx512BW.ShiftRightLogicalVariable(Vector512.Create(raw, raw).AsUInt16(), nibbleShift).AsByte() & mask;
                    if (five)
                    {
                        // Fifth bit of sub-block s is bit s of qh[l]: shift by 2k / 2k+1 per half, keep bit 0, move to bit 4.
                        var hs = Vector512.Create(Vector256.Create((ushort)(2 * k)), Vector256.Create((ushort)(2 * k + 1)));
                        Vector512<byte> hbit = Avx512BW.ShiftRightLogicalVariable(qh, hs).AsByte() & onesB;
                        q |= Vector512.ShiftLeft(hbit.AsUInt16(), 4).AsByte();
                    }
                    Vector512<int> dot = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(x0 + 64 * k)), ones);
                    acc = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(dot), Avx512F.PermuteVar16x32(coef, Pick(2 * k, 2 * k + 1)), acc);
                }
            }
            return Vector512.Sum(acc) - Vector256.Sum(accMin);
        }

        /// <summary>
        /// Q6_K: per half of a super-block two vectors — elements 0–63 (ql[0..64) low nibbles, qh bits 0–1 / 2–3 per
        /// vector half) and 64–127 (high nibbles, qh bits 4–5 / 6–7). Each 16-group's int8 scale multiplies its int16
        /// pair sums in vpmaddwd (scales broadcast to 8 int16 lanes by vpermw).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ6_K(byte* row, sbyte* xq, float* xs, int superBlocks)
        {
            var acc = Vector512<float>.Zero;
            var mask = Vector512.Create((byte)0x0F);
            var three = Vector512.Create((byte)3);
            var offset = Vector512.Create((byte)32);
            var shiftA = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
            var shiftB = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)6));
            // int16 lane i of the pair sums covers elements 2i, 2i+1, i.e. 16-group i/8 (of the 4 in a vector).
            Vector512<short> groupOf = Vector512.ShiftRightLogical(Vector512<short>.Indices, 3);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * Dequantizer.Q6_KBlockBytes;
                Vector512<short> scales = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)block + 192), Vector128<sbyte>.Zero));
                Vector512<float> coef = (Vector256.Create(BlockScale(block + 208)) * Vector256.Load(xs + i * 8)).ToVector512Unsafe();
                for (int h = 0; h < 2; h++)
                {
                    Vector512<byte> ql = Vector512.Load(block + 64 * h);
                    Vector256<byte> qh32 = Vector256.Load(block + 128 + 32 * h);
                    Vector512<ushort> qh = Vector512.Create(qh32, qh32).AsUInt16();
                    sbyte* x = xq + i * QK + 128 * h;
                    for (int v = 0; v < 2; v++)
                    {
                        Vector512<byte> low = v == 0 ? ql & mask : Vector512.ShiftRightLogical(ql.AsUInt16(), 4).AsByte() & mask;
                        Vector512<byte> high = Avx512BW.ShiftRightLogicalVariable(qh, v == 0 ? shiftA : shiftB).AsByte() & three;
                        Vector512<byte> q = low | Vector512.ShiftLeft(high.AsUInt16(), 4).AsByte();
                        Vector512<sbyte> xv = Vector512.Load(x + 64 * v);
                        Vector512<short> p16 = Avx512BW.MultiplyAddAdjacent(q, xv) - Avx512BW.MultiplyAddAdjacent(offset, xv);
                        int g0 = 8 * h + 4 * v;   // first 16-group of this vector
                        Vector512<short> sc = Avx512BW.PermuteVar32x16(scales, groupOf + Vector512.Create((short)g0));
                        Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p16, sc);
                        int sub = 4 * h + 2 * v;
                        acc = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p32), Avx512F.PermuteVar16x32(coef, Pick(sub, sub + 1)), acc);
                    }
                }
            }
            return Vector512.Sum(acc);
        }
    }
}
