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
        /// <summary>
        /// The float order of every 512-bit K-quant result (decode row kernels and <see cref="KQuantGemmV512K"/> alike),
        /// a function of the exact integer sums only: per super-block i the total <c>T_i</c> (and Q4_K/Q5_K's min sum
        /// <c>M_i</c>) as one int32; float lane <c>l</c> accumulates the super-blocks <c>i ≡ l (mod 16)</c> in order,
        /// <c>acc_l = fma((float)T_i, d_i·d8_i, acc_l)</c> (<c>accm_l</c> likewise with <c>M_i</c> and <c>dmin_i·d8_i</c>),
        /// then <see cref="TreeSum(Vector512{float})"/> of each, <c>y = Σacc − Σaccm</c>. The row kernels get their
        /// totals from 16 super-blocks' lane vectors at once (<see cref="Reduce16"/>); the GEMM gets them per output
        /// from its own lane layout — integer sums are order-free, so both have the same <c>T_i</c> and the same floats.
        /// </summary>
        internal const int SuperBlockSums = 16;

        // Per token of a row kernel call (64-byte aligned): 16 slots of 16 int32 (the super-blocks' lane vectors), 16
        // half-used slots (8 int32 + 8 zero: the Q4_K/Q5_K min sums, Q6_K's totals), d·d8 and dmin·d8 of the 16
        // super-blocks, and the two float accumulators.
        internal const int HalfSlots = 1024, ScaleOffset = 2048, MinScaleOffset = 2112, AccOffset = 2176, MinAccOffset = 2240;
        internal const int TokenStateBytes = 2304;

        /// <summary>Zeroes the upper halves of the half-used slots (written once per call; the kernels write only the lower halves).</summary>
        public static void InitState(byte* state, int tokens)
        {
            for (int t = 0; t < tokens; t++)
                for (int s = 0; s < 16; s++) Vector256<int>.Zero.Store((int*)(state + t * TokenStateBytes + HalfSlots + 64 * s + 32));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StartRow(byte* st)
        {
            Vector512<float>.Zero.Store((float*)(st + AccOffset));
            Vector512<float>.Zero.Store((float*)(st + MinAccOffset));
        }

        /// <summary>
        /// The slot of super-block c (of 16) such that <see cref="Reduce16"/> returns super-block c's total in lane c:
        /// the transpose of c's 4 × 4 index.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int Slot(int c) => ((c & 3) << 2) | (c >> 2);

        /// <summary>
        /// 16 int32 vectors (at <paramref name="v"/>, slot order) to one vector of their 16 lane sums: halves, quarters,
        /// pairs and neighbours added between vector pairs (15 adds, 30 shuffles); lane 4k + j holds vector k + 4j.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Reduce16(int* v)
        {
            Vector512<int> c0 = Halves(v, 0), c1 = Halves(v, 2), c2 = Halves(v, 4), c3 = Halves(v, 6);
            Vector512<int> c4 = Halves(v, 8), c5 = Halves(v, 10), c6 = Halves(v, 12), c7 = Halves(v, 14);
            Vector512<int> d0 = Quarters(c0, c1), d1 = Quarters(c2, c3), d2 = Quarters(c4, c5), d3 = Quarters(c6, c7);
            Vector512<int> e0 = Pairs(d0, d1), e1 = Pairs(d2, d3);
            Vector512<float> f0 = e0.AsSingle(), f1 = e1.AsSingle();
            return Avx512F.Shuffle(f0, f1, 0b10_00_10_00).AsInt32() + Avx512F.Shuffle(f0, f1, 0b11_01_11_01).AsInt32();
        }

        /// <summary>[a.lo + a.hi | b.lo + b.hi] of vectors k, k + 1 (256-bit halves).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Halves(int* v, int k)
        {
            Vector512<int> a = Vector512.Load(v + 16 * k), b = Vector512.Load(v + 16 * k + 16);
            // (Not vinserti64x4 of b's lower half: the JIT folds the load into it, see Twice.)
            return Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Quarters(Vector512<int> a, Vector512<int> b) =>
            Avx512F.Shuffle4x128(a, b, 0b10_00_10_00) + Avx512F.Shuffle4x128(a, b, 0b11_01_11_01);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> Pairs(Vector512<int> a, Vector512<int> b) =>
            Avx512F.UnpackLow(a.AsInt64(), b.AsInt64()).AsInt32() + Avx512F.UnpackHigh(a.AsInt64(), b.AsInt64()).AsInt32(); // int32 adds (no carries between lanes)

        /// <summary>
        /// The float step of <see cref="SuperBlockSums"/> for the <paramref name="count"/> super-blocks in the slots of
        /// each of <paramref name="n"/> tokens (slots past <paramref name="count"/> zeroed first: <c>fma(0, 0, acc) = acc</c>,
        /// as an accumulator is never −0).
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Flush(byte* state, int n, int count, bool q6)
        {
            for (int t = 0; t < n; t++)
            {
                byte* st = state + t * TokenStateBytes;
                for (int c = count; c < 16; c++)
                {
                    int slot = Slot(c);
                    Vector512<int>.Zero.Store((int*)(st + 64 * slot));
                    Vector256<int>.Zero.Store((int*)(st + HalfSlots + 64 * slot));
                    ((float*)(st + ScaleOffset))[c] = 0;
                    ((float*)(st + MinScaleOffset))[c] = 0;
                }
                float* acc = (float*)(st + AccOffset);
                Vector512<int> total = Reduce16((int*)(st + (q6 ? HalfSlots : 0)));
                Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(total), Vector512.Load((float*)(st + ScaleOffset)), Vector512.Load(acc)).Store(acc);
                if (q6) continue;
                float* accm = (float*)(st + MinAccOffset);
                Vector512<int> mins = Reduce16((int*)(st + HalfSlots));
                Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(mins), Vector512.Load((float*)(st + MinScaleOffset)), Vector512.Load(accm)).Store(accm);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float FinishRow(byte* st, bool mins)
        {
            float sum = TreeSum(Vector512.Load((float*)(st + AccOffset)));
            return mins ? sum - TreeSum(Vector512.Load((float*)(st + MinAccOffset))) : sum;
        }

        /// <summary>The lanes' sum in a fixed tree: l + (l + 8), then + 4, then (0 + 2) + (1 + 3).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static float TreeSum(Vector512<float> v)
        {
            Vector256<float> a = v.GetLower() + v.GetUpper();
            Vector128<float> b = a.GetLower() + a.GetUpper();
            return (b.ToScalar() + b.GetElement(2)) + (b.GetElement(1) + b.GetElement(3));
        }

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
        /// int32 lanes, the mins as vpmaddwd(bsums, m per 16) into 8; both stored to the token's slots
        /// (<paramref name="state"/>, <see cref="TokenStateBytes"/> per token) and turned into float by
        /// <see cref="Flush"/> every 16 super-blocks — the float order of <see cref="SuperBlockSums"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DotQ45_K<TN, TFive>(byte* row, Q8K x, int cols, float* y, long stride, byte* state)
            where TN : struct, ITokenCount where TFive : struct, IFlag
        {
            int n = TN.N, superBlocks = cols / QK;
            bool five = TFive.Value;
            int blockBytes = five ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
            long xStride = cols, dStride = superBlocks, bStride = cols / 16;
            for (int t = 0; t < n; t++) StartRow(state + t * TokenStateBytes);
            var mask = Vector512.Create((byte)0x0F);
            var onesB = Vector512.Create((byte)1);
            var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
            // vpshufb controls on the 8 scale bytes (broadcast): int16 lanes 0–15 = scale 2k, 16–31 = scale 2k + 1, zero
            // high bytes (control 0x80); and the mins as [m0, m0, m1, m1, …] int16 for the 16 bsums.
            Vector512<byte> c0 = ScaleControl(0), c1 = ScaleControl(1), c2 = ScaleControl(2), c3 = ScaleControl(3);
            Vector256<byte> minControl = MinControl;
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
                int c = i & 15, slot = Slot(c);
                sbyte* xq = x.Q + i * QK;
                short* bs = x.BSums + 16 * i;
                float* d8 = x.D + i;
                SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq, bs, d, dmin, d8[0], state, c, slot);
                if (n > 1) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + xStride, bs + bStride, d, dmin, d8[dStride], state + TokenStateBytes, c, slot);
                if (n > 2) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 2 * xStride, bs + 2 * bStride, d, dmin, d8[2 * dStride], state + 2 * TokenStateBytes, c, slot);
                if (n > 3) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 3 * xStride, bs + 3 * bStride, d, dmin, d8[3 * dStride], state + 3 * TokenStateBytes, c, slot);
                if (n > 4) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 4 * xStride, bs + 4 * bStride, d, dmin, d8[4 * dStride], state + 4 * TokenStateBytes, c, slot);
                if (n > 5) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 5 * xStride, bs + 5 * bStride, d, dmin, d8[5 * dStride], state + 5 * TokenStateBytes, c, slot);
                if (n > 6) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 6 * xStride, bs + 6 * bStride, d, dmin, d8[6 * dStride], state + 6 * TokenStateBytes, c, slot);
                if (n > 7) SuperBlock45(q0, q1, q2, q3, s0, s1, s2, s3, mins16, xq + 7 * xStride, bs + 7 * bStride, d, dmin, d8[7 * dStride], state + 7 * TokenStateBytes, c, slot);
                if (c == 15) Flush(state, n, 16, false);
            }
            if ((superBlocks & 15) != 0) Flush(state, n, superBlocks & 15, false);
            for (int t = 0; t < n; t++) y[t * stride] = FinishRow(state + t * TokenStateBytes, true);
        }

        /// <summary>[m0, m0, m1, m1, …, m7, m7] as int16 from the 8 min bytes (vpshufb control, zero high bytes).</summary>
        internal static Vector256<byte> MinControl => Vector256.Create(
            (ushort)0x8000, 0x8000, 0x8001, 0x8001, 0x8002, 0x8002, 0x8003, 0x8003, 0x8004, 0x8004, 0x8005, 0x8005, 0x8006, 0x8006, 0x8007, 0x8007).AsByte();

        /// <summary>One token's Q4_K/Q5_K super-block: the 16-lane integer sum, the 8-lane min sum and d·d8, dmin·d8 into its slots.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SuperBlock45(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
            Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, Vector256<short> mins16,
            sbyte* x, short* bsums, float d, float dmin, float d8, byte* st, int c, int slot)
        {
            IntDot(q0, q1, q2, q3, s0, s1, s2, s3, x).Store((int*)(st + 64 * slot));
            Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), mins16).Store((int*)(st + HalfSlots + 64 * slot));
            ((float*)(st + ScaleOffset))[c] = d * d8;
            ((float*)(st + MinScaleOffset))[c] = dmin * d8;
        }

        /// <summary>The 256 q of a Q4_K/Q5_K super-block in element order (what <see cref="DotQ45_K{TN, TFive}"/> unpacks) to <paramref name="q"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void UnpackQ45(byte* block, bool five, byte* q)
        {
            var mask = Vector512.Create((byte)0x0F);
            var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
            byte* qs = block + (five ? 48 : 16);
            Vector512<byte> q0 = Nibbles(qs, nibbleShift, mask), q1 = Nibbles(qs + 32, nibbleShift, mask);
            Vector512<byte> q2 = Nibbles(qs + 64, nibbleShift, mask), q3 = Nibbles(qs + 96, nibbleShift, mask);
            if (five)
            {
                var onesB = Vector512.Create((byte)1);
                Vector512<ushort> qh = Twice(block + 16);
                var hs = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)1));
                var twoU = Vector512.Create((ushort)2);
                q0 |= FifthBit(qh, hs, onesB); hs += twoU;
                q1 |= FifthBit(qh, hs, onesB); hs += twoU;
                q2 |= FifthBit(qh, hs, onesB); hs += twoU;
                q3 |= FifthBit(qh, hs, onesB);
            }
            q0.Store(q); q1.Store(q + 64); q2.Store(q + 128); q3.Store(q + 192);
        }

        /// <summary>The 256 unsigned q (0–63) of a Q6_K super-block in element order (as <see cref="DotQ6_K{TN}"/> unpacks them).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void UnpackQ6(byte* block, byte* q)
        {
            var mask = Vector512.Create((byte)0x0F);
            var bits45 = Vector512.Create((byte)0x30);
            var upA = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
            var downB = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
            Vector512<byte> ql0 = Vector512.Load(block), ql1 = Vector512.Load(block + 64);
            Vector512<ushort> h0 = Twice(block + 128), h1 = Twice(block + 160);
            ((ql0 & mask) | (Avx512BW.ShiftLeftLogicalVariable(h0, upA).AsByte() & bits45)).Store(q);
            ((Vector512.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte() & mask) | (Avx512BW.ShiftRightLogicalVariable(h0, downB).AsByte() & bits45)).Store(q + 64);
            ((ql1 & mask) | (Avx512BW.ShiftLeftLogicalVariable(h1, upA).AsByte() & bits45)).Store(q + 128);
            ((Vector512.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte() & mask) | (Avx512BW.ShiftRightLogicalVariable(h1, downB).AsByte() & bits45)).Store(q + 192);
        }

        /// <summary>The fp16 (d, dmin) of a Q4_K/Q5_K block as in the row kernels.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Scales45(byte* block) => BlockScales2(block);

        /// <summary>
        /// 32 bytes at <paramref name="p"/> in both halves: one load and one vinserti64x4. (Not
        /// <c>Avx512F.BroadcastVector256ToVector512</c>: .NET 10's JIT encodes its memory operand's displacement
        /// as if the operand were 16 bytes — EVEX disp8·N with the wrong N — so <c>[r + 0x20]</c> reads at r + 0x40; and
        /// not <c>Vector512.Create(v, v)</c>, which inserts both halves into a stale register.)
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector512<ushort> Twice(byte* p)
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
        public static void DotQ6_K<TN>(byte* row, Q8K x, int cols, float* y, long stride, byte* state) where TN : struct, ITokenCount
        {
            int n = TN.N, superBlocks = cols / QK;
            long xStride = cols, dStride = superBlocks, bStride = cols / 16;
            for (int t = 0; t < n; t++) StartRow(state + t * TokenStateBytes);
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
                int c = i & 15, slot = Slot(c);
                SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq, bs, d * d8[0], state, c, slot);
                if (n > 1) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + xStride, bs + bStride, d * d8[dStride], state + TokenStateBytes, c, slot);
                if (n > 2) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 2 * xStride, bs + 2 * bStride, d * d8[2 * dStride], state + 2 * TokenStateBytes, c, slot);
                if (n > 3) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 3 * xStride, bs + 3 * bStride, d * d8[3 * dStride], state + 3 * TokenStateBytes, c, slot);
                if (n > 4) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 4 * xStride, bs + 4 * bStride, d * d8[4 * dStride], state + 4 * TokenStateBytes, c, slot);
                if (n > 5) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 5 * xStride, bs + 5 * bStride, d * d8[5 * dStride], state + 5 * TokenStateBytes, c, slot);
                if (n > 6) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 6 * xStride, bs + 6 * bStride, d * d8[6 * dStride], state + 6 * TokenStateBytes, c, slot);
                if (n > 7) SuperBlock6(q0, q1, q2, q3, s0, s1, s2, s3, sc16, xq + 7 * xStride, bs + 7 * bStride, d * d8[7 * dStride], state + 7 * TokenStateBytes, c, slot);
                if (c == 15) Flush(state, n, 16, true);
            }
            if ((superBlocks & 15) != 0) Flush(state, n, superBlocks & 15, true);
            for (int t = 0; t < n; t++) y[t * stride] = FinishRow(state + t * TokenStateBytes, false);
        }

        /// <summary>One token's Q6_K super-block: <c>Σ sc·q·x − 32·Σ sc·bsums</c> (8 int32 lanes) and d·d8 into its slots.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SuperBlock6(Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
            Vector512<short> s0, Vector512<short> s1, Vector512<short> s2, Vector512<short> s3, Vector256<short> sc16,
            sbyte* x, short* bsums, float dd, byte* st, int c, int slot)
        {
            Vector512<int> isum = IntDot(q0, q1, q2, q3, s0, s1, s2, s3, x);
            Vector256<int> offset = Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), sc16), 5);
            (isum.GetLower() + isum.GetUpper() - offset).Store((int*)(st + HalfSlots + 64 * slot));
            ((float*)(st + ScaleOffset))[c] = dd;
        }
    }
}
