using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// 4/5/6-bit row dots on 512 bits (AVX-512BW). Q4_0 (Q8_0 activations): two 32-element blocks per vector, the
    /// nibbles split by a per-half variable shift (vpsrlvw: 0 for one half, 4 for the other) and a byte mask, one float
    /// multiply-add per block. K-quants (Q8_K activations): 64 weights per vector, the whole super-block summed in int32
    /// (sub-block scales applied in vpmaddwd) and one float multiply-add per super-block and token; the weights of a
    /// super-block are unpacked once for up to 4 tokens.
    /// </summary>
    private static class KQuantV512
    {
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
        /// Q4_K (<typeparamref name="TFive"/> false) or Q5_K on Q8_K, <c>TN.N</c> tokens: nibble group k (k = 0..3) of a
        /// super-block holds sub-blocks 2k (low nibbles, vector half 0) and 2k + 1 (high, half 1), the activations
        /// 64k … 64k + 63. Per token and super-block: 4 × (vpmaddubsw, vpmaddwd by the sub-block scales, vpaddd) into 16
        /// int32 lanes, one convert and FMA by <c>d·d8</c>; the mins: vpmaddwd(bsums, m per 16), convert, FMA by
        /// <c>dmin·d8</c> into a second accumulator.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DotQ45_K<TN, TFive>(byte* row, Q8K x, int cols, float* y, long stride)
            where TN : struct, ITokenCount where TFive : struct, IFlag
        {
            int n = TN.N, superBlocks = cols / QK;
            bool five = TFive.Value;
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default, m4 = default, m5 = default, m6 = default, m7 = default;
            var mask = Vector512.Create((byte)0x0F);
            var onesB = Vector512.Create((byte)1);
            var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
            // vpshufb controls on the 8 scale bytes (broadcast): int16 lanes 0–15 = scale 2k, 16–31 = scale 2k + 1, zero
            // high bytes (control 0x80); and the mins as [m0, m0, m1, m1, …] int16 for the 16 bsums.
            Vector512<byte> c0 = ScaleControl(0), c1 = ScaleControl(1), c2 = ScaleControl(2), c3 = ScaleControl(3);
            Vector256<byte> minControl = Vector256.Create(
                (ushort)0x8000, 0x8000, 0x8001, 0x8001, 0x8002, 0x8002, 0x8003, 0x8003, 0x8004, 0x8004, 0x8005, 0x8005, 0x8006, 0x8006, 0x8007, 0x8007).AsByte();
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * blockBytes;
                UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
                Vector512<byte> scb = Vector512.Create(sc).AsByte();
                Vector512<short> s0 = Avx512BW.Shuffle(scb, c0).AsInt16(), s1 = Avx512BW.Shuffle(scb, c1).AsInt16();
                Vector512<short> s2 = Avx512BW.Shuffle(scb, c2).AsInt16(), s3 = Avx512BW.Shuffle(scb, c3).AsInt16();
                Vector256<short> mins16 = Avx2.Shuffle(Vector256.Create(m).AsByte(), minControl).AsInt16();
                byte* qs = block + (five ? 48 : 16);
                Vector512<byte> q0 = Nibbles(qs, nibbleShift, mask), q1 = Nibbles(qs + 32, nibbleShift, mask);
                Vector512<byte> q2 = Nibbles(qs + 64, nibbleShift, mask), q3 = Nibbles(qs + 96, nibbleShift, mask);
                if (five)
                {
                    // Fifth bit of sub-block s is bit s of qh[l]: shift by 2k / 2k + 1 per half, keep bit 0, move to bit 4.
                    Vector512<ushort> qh = Twice(block + 16);
                    var hs = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)1));
                    var twoU = Vector512.Create((ushort)2);
                    q0 |= FifthBit(qh, hs, onesB); hs += twoU;
                    q1 |= FifthBit(qh, hs, onesB); hs += twoU;
                    q2 |= FifthBit(qh, hs, onesB); hs += twoU;
                    q3 |= FifthBit(qh, hs, onesB);
                }
                Vector128<float> dm = BlockScales2(block);
                float d = dm.ToScalar(), dmin = dm.GetElement(1);
                { a0 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 0, i, cols, d, a0); m0 = MinTerm(mins16, x, 0, i, cols, dmin, m0); }
                if (n > 1) { a1 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 1, i, cols, d, a1); m1 = MinTerm(mins16, x, 1, i, cols, dmin, m1); }
                if (n > 2) { a2 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 2, i, cols, d, a2); m2 = MinTerm(mins16, x, 2, i, cols, dmin, m2); }
                if (n > 3) { a3 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 3, i, cols, d, a3); m3 = MinTerm(mins16, x, 3, i, cols, dmin, m3); }
                if (n > 4) { a4 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 4, i, cols, d, a4); m4 = MinTerm(mins16, x, 4, i, cols, dmin, m4); }
                if (n > 5) { a5 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 5, i, cols, d, a5); m5 = MinTerm(mins16, x, 5, i, cols, dmin, m5); }
                if (n > 6) { a6 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 6, i, cols, d, a6); m6 = MinTerm(mins16, x, 6, i, cols, dmin, m6); }
                if (n > 7) { a7 = Token(q0, q1, q2, q3, s0, s1, s2, s3, x, 7, i, cols, d, a7); m7 = MinTerm(mins16, x, 7, i, cols, dmin, m7); }
            }
            y[0] = Vector512.Sum(a0) - Vector256.Sum(m0);
            if (n > 1) y[stride] = Vector512.Sum(a1) - Vector256.Sum(m1);
            if (n > 2) y[2 * stride] = Vector512.Sum(a2) - Vector256.Sum(m2);
            if (n > 3) y[3 * stride] = Vector512.Sum(a3) - Vector256.Sum(m3);
            if (n > 4) y[4 * stride] = Vector512.Sum(a4) - Vector256.Sum(m4);
            if (n > 5) y[5 * stride] = Vector512.Sum(a5) - Vector256.Sum(m5);
            if (n > 6) y[6 * stride] = Vector512.Sum(a6) - Vector256.Sum(m6);
            if (n > 7) y[7 * stride] = Vector512.Sum(a7) - Vector256.Sum(m7);
        }

        /// <summary>Token t's super-block sum: <c>acc + (float)isum · (d·d8)</c>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Token(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
            Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, Q8K x, int t, int i, int cols, float d, Vector512<float> acc)
        {
            Vector512<int> isum = IntDot(q0, q1, q2, q3, s0, s1, s2, s3, x.Q + (long)t * cols + i * QK);
            return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(isum), Vector512.Create(d * x.D[(long)t * (cols / QK) + i]), acc);
        }

        /// <summary>Token t's Q4_K/Q5_K minimum term: <c>acc + (float)(bsums · mins16) · (dmin·d8)</c>, 8 int32 lanes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> MinTerm(Vector256<short> mins16, Q8K x, int t, int i, int cols, float dmin, Vector256<float> acc)
        {
            Vector256<int> msum = Avx2.MultiplyAddAdjacent(Vector256.Load(x.BSums + (long)t * (cols / 16) + 16 * i), mins16);
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(msum), Vector256.Create(dmin * x.D[(long)t * (cols / QK) + i]), acc);
        }

        /// <summary>
        /// 32 bytes at <paramref name="p"/> in both halves: one load and one vinserti64x4. (Not
        /// <c>Avx512F.BroadcastVector256ToVector512</c>: .NET 10's JIT encodes its memory operand's displacement
        /// as if the operand were 16 bytes — EVEX disp8·N with the wrong N — so <c>[r + 0x20]</c> reads at r + 0x40; and
        /// not <c>Vector512.Create(v, v)</c>, which inserts both halves into a stale register.)
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<ushort> Twice(byte* p)
        {
            Vector256<ushort> v = Vector256.Load((ushort*)p);
            return Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1);
        }

        /// <summary>
        /// The fp16 pair (d, dmin) at <paramref name="block"/> as float32 lanes 0 and 1 — the vector form of
        /// <see cref="BlockScale"/> (bit-identical), one conversion for both instead of two scalar ones.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> BlockScales2(byte* block) =>
            F16Row.ToSingle(Sse41.ConvertToVector128Int32(Vector128.CreateScalar(Unsafe.ReadUnaligned<uint>(block)).AsUInt16()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<byte> FifthBit(Vector512<ushort> qh, Vector512<ushort> shifts, Vector512<byte> onesB) =>
            Vector512.ShiftLeft((Avx512BW.ShiftRightLogicalVariable(qh, shifts).AsByte() & onesB).AsUInt16(), 4).AsByte();

        /// <summary>vpshufb control: bytes (2k, 0x80) in the lower 256 bits, (2k + 1, 0x80) in the upper — scale byte as int16.</summary>
        private static Vector512<byte> ScaleControl(int k) =>
            Vector512.Create(Vector256.Create((ushort)(0x8000 | 2 * k)), Vector256.Create((ushort)(0x8000 | 2 * k + 1))).AsByte();

        /// <summary>
        /// 32 bytes of nibbles as 64 unsigned bytes: low nibbles in the lower half, high nibbles in the upper. (One 512-bit
        /// load of two groups split by a mask, a 16-bit shift and two <c>vshufi32x4</c> was 2–3 % faster in L2 but ≈ 15 %
        /// slower streaming the 2B's matrices from DRAM — 64-byte loads at 16-byte offsets split cache lines in flight.)
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<byte> Nibbles(byte* p, Vector512<ushort> nibbleShift, Vector512<byte> mask)
        {
            return Avx512BW.ShiftRightLogicalVariable(Twice(p), nibbleShift).AsByte() & mask;
        }

        /// <summary>
        /// <c>Σ_k vpmaddwd(vpmaddubsw(q_k, x[64k..]), s_k)</c>: 16 exact int32 lanes of one token's super-block (q ≤ 63:
        /// int16 pair sums ≤ 2·63·127; times scales |s| ≤ 128, summed over 256 elements, far inside int32).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> IntDot(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
            Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, sbyte* x) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(x)), s0)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(x + 64)), s1)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q2, Vector512.Load(x + 128)), s2)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q3, Vector512.Load(x + 192)), s3);

        /// <summary>
        /// Q6_K on Q8_K, <c>TN.N</c> tokens: per half h of a super-block two vectors — elements 0–63 (ql[0..64) low
        /// nibbles, qh bits 0–1 / 2–3 per vector half) and 64–127 (high nibbles, qh bits 4–5 / 6–7), unsigned q ∈ [0, 63];
        /// each 16-group's int8 scale multiplies its int16 pair sums in vpmaddwd (vpermw spreads the scales). Per token
        /// the offset <c>32·Σ sc·bsums</c> is subtracted in int32 after folding the 16 lanes to 8, then one convert and
        /// FMA by <c>d·d8</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DotQ6_K<TN>(byte* row, Q8K x, int cols, float* y, long stride) where TN : struct, ITokenCount
        {
            int n = TN.N, superBlocks = cols / QK;
            long xStride = cols, dStride = superBlocks, bStride = cols / 16;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            var mask = Vector512.Create((byte)0x0F);
            // The two high bits go straight to bits 4–5 by one 16-bit shift per vector half and a mask (a shift within 16
            // bits moves the neighbouring byte's bits only into bits the mask clears): for elements 0–63 of a half, qh
            // bits 0–1 (left by 4) | bits 2–3 (left by 2); for 64–127 bits 4–5 (in place) | bits 6–7 (right by 2).
            var bits45 = Vector512.Create((byte)0x30);
            var upA = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
            var downB = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
            // int16 lane i of the pair sums covers elements 2i, 2i+1, i.e. 16-group i/8 (of the 4 in a vector).
            Vector512<short> groupOf = Vector512.ShiftRightLogical(Vector512<short>.Indices, 3), four = Vector512.Create((short)4);
            for (int i = 0; i < superBlocks; i++)
            {
                byte* block = row + i * Dequantizer.Q6_KBlockBytes;
                Vector256<short> sc16 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)block + 192));
                Vector512<short> scales = sc16.ToVector512Unsafe();
                Vector512<short> s0 = Avx512BW.PermuteVar32x16(scales, groupOf), s1 = Avx512BW.PermuteVar32x16(scales, groupOf + four);
                Vector512<short> s2 = Avx512BW.PermuteVar32x16(scales, groupOf + four + four), s3 = Avx512BW.PermuteVar32x16(scales, groupOf + four + four + four);
                Vector512<byte> ql0 = Vector512.Load(block), ql1 = Vector512.Load(block + 64);
                Vector512<ushort> h0 = Twice(block + 128);
                Vector512<ushort> h1 = Twice(block + 160);
                Vector512<byte> q0 = (ql0 & mask) | (Avx512BW.ShiftLeftLogicalVariable(h0, upA).AsByte() & bits45);
                Vector512<byte> q1 = (Vector512.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte() & mask) | (Avx512BW.ShiftRightLogicalVariable(h0, downB).AsByte() & bits45);
                Vector512<byte> q2 = (ql1 & mask) | (Avx512BW.ShiftLeftLogicalVariable(h1, upA).AsByte() & bits45);
                Vector512<byte> q3 = (Vector512.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte() & mask) | (Avx512BW.ShiftRightLogicalVariable(h1, downB).AsByte() & bits45);
                float d = BlockScale(block + 208);
                sbyte* xq = x.Q + i * QK;
                float* d8 = x.D + i;
                short* bs = x.BSums + 16 * i;
                a0 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq, bs, d * d8[0], a0);
                if (n > 1) a1 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + xStride, bs + bStride, d * d8[dStride], a1);
                if (n > 2) a2 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 2 * xStride, bs + 2 * bStride, d * d8[2 * dStride], a2);
                if (n > 3) a3 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 3 * xStride, bs + 3 * bStride, d * d8[3 * dStride], a3);
                if (n > 4) a4 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 4 * xStride, bs + 4 * bStride, d * d8[4 * dStride], a4);
                if (n > 5) a5 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 5 * xStride, bs + 5 * bStride, d * d8[5 * dStride], a5);
                if (n > 6) a6 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 6 * xStride, bs + 6 * bStride, d * d8[6 * dStride], a6);
                if (n > 7) a7 = SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 7 * xStride, bs + 7 * bStride, d * d8[7 * dStride], a7);
            }
            y[0] = Vector256.Sum(a0);
            if (n > 1) y[stride] = Vector256.Sum(a1);
            if (n > 2) y[2 * stride] = Vector256.Sum(a2);
            if (n > 3) y[3 * stride] = Vector256.Sum(a3);
            if (n > 4) y[4 * stride] = Vector256.Sum(a4);
            if (n > 5) y[5 * stride] = Vector256.Sum(a5);
            if (n > 6) y[6 * stride] = Vector256.Sum(a6);
            if (n > 7) y[7 * stride] = Vector256.Sum(a7);
        }

        /// <summary>One token's Q6_K super-block: <c>acc += (float)(Σ sc·q·x − 32·Σ sc·bsums) · dd</c> over 8 int32 lanes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> SuperBlock6(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
            Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, Vector256<short> sc16,
            sbyte* x, short* bsums, float dd, Vector256<float> acc)
        {
            Vector512<int> isum = IntDot(q0, q1, q2, q3, s0, s1, s2, s3, x);
            Vector256<int> offset = Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), sc16), 5);
            Vector256<int> total = isum.GetLower() + isum.GetUpper() - offset;
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(total), Vector256.Create(dd), acc);
        }
    }
}
