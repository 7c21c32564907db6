using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// 4/5/6-bit row dots on 256 bits (AVX2): one 32-element activation block per vector; vpmaddubsw(q, qx) +
    /// vpmaddwd give 8 exact int32 lanes, FMA'd with the block's broadcast float factor. Same integers as
    /// <see cref="KQuantV512"/> and the scalar references.
    /// </summary>
    private static class KQuantV256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> BytesToSingle(ulong bytes) =>
            Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Vector128.CreateScalar(bytes).AsByte()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Lane(Vector256<float> v, int i) => Avx2.PermuteVar8x32(v, Vector256.Create(i));

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

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ45_K(byte* row, sbyte* xq, float* xs, float* xsums, int superBlocks, bool five)
        {
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            var acc = Vector256<float>.Zero;
            var accMin = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            var onesB = Vector256.Create((byte)1);
            var mask = Vector256.Create((byte)0x0F);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * blockBytes;
                UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
                Vector256<float> dx = Vector256.Load(xs + i * 8);
                Vector256<float> coef = Vector256.Create(BlockScale(block)) * BytesToSingle(sc) * dx;
                accMin = Vector256.FusedMultiplyAdd(Vector256.Create(BlockScale(block + 2)) * BytesToSingle(m), Vector256.Load(xsums + i * 8), accMin);
                Vector256<ushort> qh = five ? Vector256.Load(block + 16).AsUInt16() : default;
                byte* qs = block + (five ? 48 : 16);
                for (int j = 0; j < 8; j++)
                {
                    Vector256<byte> raw = Vector256.Load(qs + 32 * (j / 2));
                    Vector256<byte> q = ((j & 1) == 0 ? raw : Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask;
                    if (five)
                        q |= Vector256.ShiftLeft((Vector256.ShiftRightLogical(qh, j).AsByte() & onesB).AsUInt16(), 4).AsByte();
                    Vector256<sbyte> x = Vector256.Load(xq + i * QK + 32 * j);
                    Vector256<int> dot = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, x), ones);
                    acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(dot), Lane(coef, j), acc);
                }
            }
            return Vector256.Sum(acc) - Vector256.Sum(accMin);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static float DotQ6_K(byte* row, sbyte* xq, float* xs, int superBlocks)
        {
            var acc = Vector256<float>.Zero;
            var mask = Vector256.Create((byte)0x0F);
            var three = Vector256.Create((byte)3);
            var offset = Vector256.Create((byte)32);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * Dequantizer.Q6_KBlockBytes;
                float d = BlockScale(block + 208);
                for (int h = 0; h < 2; h++)
                {
                    byte* ql = block + 64 * h;
                    Vector256<ushort> qh = Vector256.Load(block + 128 + 32 * h).AsUInt16();
                    sbyte* sc = (sbyte*)block + 192 + 8 * h;
                    for (int k = 0; k < 4; k++)
                    {
                        Vector256<byte> raw = Vector256.Load(ql + 32 * (k & 1));
                        Vector256<byte> low = ((k >> 1) == 0 ? raw : Vector256.ShiftRightLogical(raw.AsUInt16(), 4).AsByte()) & mask;
                        Vector256<byte> high = Vector256.ShiftRightLogical(qh, 2 * k).AsByte() & three;
                        Vector256<byte> q = low | Vector256.ShiftLeft(high.AsUInt16(), 4).AsByte();
                        Vector256<sbyte> x = Vector256.Load(xq + i * QK + 128 * h + 32 * k);
                        Vector256<short> p16 = Avx2.MultiplyAddAdjacent(q, x) - Avx2.MultiplyAddAdjacent(offset, x);
                        var scales = Vector256.Create(Vector128.Create((short)sc[2 * k]), Vector128.Create((short)sc[2 * k + 1]));
                        Vector256<int> p32 = Avx2.MultiplyAddAdjacent(p16, scales);
                        acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p32), Vector256.Create(d * xs[i * 8 + 4 * h + k]), acc);
                    }
                }
            }
            return Vector256.Sum(acc);
        }
    }
}
