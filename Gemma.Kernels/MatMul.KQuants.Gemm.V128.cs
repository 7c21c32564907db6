using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

internal static unsafe partial class MatMul
{
    /// <summary>
    /// The K-quant GEMM on 128 bits when it is this CPU's int8 path (ARM64; x86 with 128-bit vectors preferred) and
    /// n ≥ <see cref="GemmMinTokens"/>; otherwise false and the row kernels run.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryKQuantGemmV128<TDot>(in WeightMatrix w, Q8K x, float* y, int n, int r0, int r1) where TDot : struct, IKQuantRowDot
    {
        if ((Vector512.IsHardwareAccelerated && Avx512BW.IsSupported) || (Vector256.IsHardwareAccelerated && Avx2.IsSupported)
            || !Int8V128.IsSupported || n < GemmMinTokens)
            return false;
        // typeof tests of struct type arguments are JIT-time constants: one branch survives per instantiation.
        if (typeof(TDot) == typeof(Q45_KDot<FlagFalse>)) KQuantGemmV128.Run<Q45_KPanelV128<FlagFalse>>(w, x, y, n, r0, r1);
        else if (typeof(TDot) == typeof(Q45_KDot<FlagTrue>)) KQuantGemmV128.Run<Q45_KPanelV128<FlagTrue>>(w, x, y, n, r0, r1);
        else if (typeof(TDot) == typeof(Q6_KDot)) KQuantGemmV128.Run<Q6_KPanelV128>(w, x, y, n, r0, r1);
        else return false;
        return true;
    }

    /// <summary>
    /// The Vector128 K-quant kernels whatever this CPU's preferred width (tests: on AVX-512/AVX2 machines too): the
    /// decode row dots for n = 1, the packed GEMM otherwise, on Q8_K activations. Needs <see cref="Int8V128.IsSupported"/>.
    /// </summary>
    internal static void LinearKQuantV128(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n)
    {
        CheckShapes(w, x, y, n);
        if (!Int8V128.IsSupported) throw new PlatformNotSupportedException();
        if (!UsesQ8KActivations(w.Type)) throw new ArgumentException($"{w.Type} is not a K-quant.", nameof(w));
        if (n == 0 || w.Rows == 0 || w.Cols == 0) { y.Slice(0, n * w.Rows).Clear(); return; }
        fixed (float* px = x)
        fixed (float* py = y)
        {
            Q8KActivations.Rent(n, w.Cols, out Q8K xk);
            QuantizeQ8K(px, n * (w.Cols / QK), xk.Q, xk.D, xk.BSums);
            if (n == 1)
            {
                for (int r = 0; r < w.Rows; r++)
                    py[r] = w.Type == WeightType.Q6_K ? KQuantV128.DotQ6_K(w.Row(r), xk, w.Cols / QK)
                        : KQuantV128.DotQ45_K(w.Row(r), xk, w.Cols / QK, w.Type == WeightType.Q5_K);
            }
            else if (w.Type == WeightType.Q4_K) KQuantGemmV128.Run<Q45_KPanelV128<FlagFalse>>(w, xk, py, n, 0, w.Rows);
            else if (w.Type == WeightType.Q5_K) KQuantGemmV128.Run<Q45_KPanelV128<FlagTrue>>(w, xk, py, n, 0, w.Rows);
            else KQuantGemmV128.Run<Q6_KPanelV128>(w, xk, py, n, 0, w.Rows);
        }
    }

    /// <summary>
    /// One K-quant type's super-block unpacked for <see cref="KQuantGemmV128"/>: the 256 weights as int8 in element
    /// order, the integer scale of each unit (the elements sharing one scale: Q4_K/Q5_K 32 with a 6-bit scale, Q6_K 16
    /// with an int8 scale), the 8 six-bit mins, and the fp16 factors <c>d</c> (and <c>dmin</c>) as float32 — exactly
    /// the integers and floats of the scalar reference.
    /// </summary>
    private interface IKQuantPanelV128
    {
        /// <summary>Bytes per super-block of 256 weights.</summary>
        static abstract int BlockBytes { get; }
        /// <summary>Elements per scale unit: 32 (Q4_K, Q5_K) or 16 (Q6_K).</summary>
        static abstract int UnitBytes { get; }
        /// <summary>Q4_K/Q5_K: <c>w = d·sc·q − dmin·m</c> (a min term); Q6_K: <c>w = d·sc·(q − 32)</c>.</summary>
        static abstract bool HasMins { get; }
        static abstract void Unpack(byte* block, sbyte* q, int* unitScales, int* mins, out float d, out float dmin);
    }

    /// <summary>Q4_K (<typeparamref name="THighBit"/> false) and Q5_K: q ∈ [0, 15] or [0, 31], a valid int8.</summary>
    private readonly struct Q45_KPanelV128<THighBit> : IKQuantPanelV128 where THighBit : struct, IFlag
    {
        public static int BlockBytes => THighBit.Value ? Dequantizer.Q5_KBlockBytes : Dequantizer.Q4_KBlockBytes;
        public static int UnitBytes => 32;
        public static bool HasMins => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Unpack(byte* block, sbyte* q, int* unitScales, int* mins, out float d, out float dmin)
        {
            bool five = THighBit.Value;
            UnpackScaleMinK4(block + 4, out ulong sc, out ulong m);
            Vector128<ushort> qh0 = five ? Vector128.Load(block + 16).AsUInt16() : default;
            Vector128<ushort> qh1 = five ? Vector128.Load(block + 32).AsUInt16() : default;
            byte* qs = block + (five ? 48 : 16);
            for (int j = 0; j < 8; j++)
            {
                // Sub-block j is unit j.
                KQuantV128.SubBlockQ45(qs, qh0, qh1, j, five, out Vector128<byte> q0, out Vector128<byte> q1);
                q0.AsSByte().Store(q + 32 * j);
                q1.AsSByte().Store(q + 32 * j + 16);
                unitScales[j] = (byte)(sc >> (8 * j));
                mins[j] = (byte)(m >> (8 * j));
            }
            d = BlockScale(block);
            dmin = BlockScale(block + 2);
        }
    }

    /// <summary>Q6_K: q − 32 ∈ [−32, 31] in the bytes; unit u (elements 16u …) has the int8 scale <c>sc[u]</c>.</summary>
    private readonly struct Q6_KPanelV128 : IKQuantPanelV128
    {
        public static int BlockBytes => Dequantizer.Q6_KBlockBytes;
        public static int UnitBytes => 16;
        public static bool HasMins => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Unpack(byte* block, sbyte* q, int* unitScales, int* mins, out float d, out float dmin)
        {
            var mask = Vector128.Create((byte)0x0F);
            var three = Vector128.Create((byte)3);
            var offset = Vector128.Create((byte)32);
            for (int h = 0; h < 2; h++)
            {
                byte* ql = block + 64 * h;
                Vector128<ushort> qh0 = Vector128.Load(block + 128 + 32 * h).AsUInt16(), qh1 = Vector128.Load(block + 144 + 32 * h).AsUInt16();
                for (int k = 0; k < 4; k++)
                {
                    // Sub-block k of this half (elements 128h + 32k …): nibble k/2 of ql[32(k&1) + l], bits 2k, 2k+1 of qh[l].
                    Vector128<byte> raw0 = Vector128.Load(ql + 32 * (k & 1)), raw1 = Vector128.Load(ql + 32 * (k & 1) + 16);
                    if ((k >> 1) != 0) { raw0 = Vector128.ShiftRightLogical(raw0, 4); raw1 = Vector128.ShiftRightLogical(raw1, 4); }
                    Vector128<byte> hi0 = Vector128.ShiftRightLogical(qh0, 2 * k).AsByte() & three;
                    Vector128<byte> hi1 = Vector128.ShiftRightLogical(qh1, 2 * k).AsByte() & three;
                    (((raw0 & mask) | Vector128.ShiftLeft(hi0.AsUInt16(), 4).AsByte()) - offset).AsSByte().Store(q + 128 * h + 32 * k);
                    (((raw1 & mask) | Vector128.ShiftLeft(hi1.AsUInt16(), 4).AsByte()) - offset).AsSByte().Store(q + 128 * h + 32 * k + 16);
                }
            }
            for (int u = 0; u < 16; u++) unitScales[u] = ((sbyte*)block)[192 + u];
            d = BlockScale(block + 208);
            dmin = 0;
        }
    }

    /// <summary>
    /// Packed K-quant GEMM on 128 bits (ARM64 SDOT; x86 SSSE3 for the tests), prefill and batches, Q8_K activations.
    /// <para><b>Layout.</b> A super-block is 256 / u units of u elements sharing one integer scale (u = 32 for Q4_K/Q5_K's
    /// sub-blocks, 16 for Q6_K's groups), taken as chunks of 4 units interleaved by 4 bytes
    /// (<see cref="Int8V128.Transpose4"/>): vector k of a chunk holds bytes 4k … 4k + 3 of units 0–3, so the u/4 SDOTs
    /// of a chunk into one accumulator leave unit j's exact sum in lane j, and one <c>mla</c> by the 4 unit scales weighs
    /// them. Each group of <see cref="TileRows"/> rows is unpacked once into a panel (per super-block: the rows' chunks,
    /// unit scales, the mins transposed to one vector of 4 rows per sub-block, <c>d</c> and <c>dmin</c> as 4-row
    /// vectors) and the tokens' activations interleaved the same way once per call, with the 8 sub-block sums of bsums.</para>
    /// <para><b>Numerics: the scalar reference's, bit for bit.</b> Per (row, token, super-block) the integer sums
    /// <c>isum = Σ sc·Σ q·qx</c> and <c>msum = Σ m_j·(bsums[2j] + bsums[2j+1])</c> are exact; pairwise adds gather the
    /// 4 rows' <c>isum</c> into one vector, and the float work is lane-wise with separate roundings —
    /// <c>acc += (d·d8)·isum − (dmin·d8)·msum</c>, super-blocks in order — the same IEEE operations, in the same
    /// order, as <see cref="DotQ4_KScalar"/>/<see cref="DotQ6_KScalar"/> and the Vector128 decode row dots
    /// (<see cref="KQuantV128"/>): every token's result is identical alone, in any batch, and to the scalar path.
    /// Per (row, token, super-block), Q4_K/Q5_K: 16 <c>sdot</c>, 2 <c>movi</c> + 2 <c>mla</c> (Q6_K: 4 + 4), ¾ <c>addp</c>,
    /// 2 min <c>mla</c> and 2 float operations.</para>
    /// </summary>
    private static class KQuantGemmV128
    {
        private const int TileRows = 4;
        // Panel bytes per super-block: weights (4 rows × 256), unit scales (≤ 4 chunks × 4 rows × 4 int32), mins
        // (8 sub-blocks × 4 rows int32), d and dmin (4 rows float each). Chunk c of row r: c·4·chunkBytes + r·chunkBytes.
        private const int WeightBytes = TileRows * QK, ScalesAt = WeightBytes, MinsAt = ScalesAt + 4 * TileRows * 16;
        private const int DAt = MinsAt + 8 * TileRows * 4, DMinAt = DAt + 16, PanelBlockBytes = DMinAt + 16;
        // Activation bytes per super-block and token: 256 interleaved int8, then the 8 sub-block sums of bsums (int32).
        private const int XBlockBytes = QK + 32;

        [ThreadStatic] private static byte[]? t_packedX;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run<TP>(in WeightMatrix w, Q8K x, float* y, int n, int r0, int r1) where TP : struct, IKQuantPanelV128
        {
            int cols = w.Cols, rows = w.Rows, blocks = cols / QK;
            long tokenBytes = (long)blocks * XBlockBytes;
            byte* xp = Scratch.Get(ref t_packedX, Math.Max(1, n * tokenBytes));
            for (int t = 0; t < n; t++)
                PackActivations<TP>(x.Token(t, cols), blocks, xp + t * tokenBytes);
            byte* panel = (byte*)PanelScratch.Get(Math.Max(1, blocks) * PanelBlockBytes / sizeof(float));
            for (int g = r0; g < r1; g += TileRows)
            {
                int count = Math.Min(TileRows, r1 - g);
                PackRows<TP>(w, g, count, blocks, panel);
                int t = 0;
                for (; t + 2 <= n; t += 2)
                    Tile<Two, TP>(panel, blocks, xp + t * tokenBytes, tokenBytes, x.D + (long)t * blocks, y + (long)t * rows + g, rows, count);
                if (t < n)
                    Tile<One, TP>(panel, blocks, xp + t * tokenBytes, tokenBytes, x.D + (long)t * blocks, y + (long)t * rows + g, rows, count);
            }
        }

        /// <summary>One token's Q8_K values interleaved per chunk (as the weights), and per super-block its 8 sub-block bsums.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackActivations<TP>(Q8K x, int blocks, byte* dst) where TP : struct, IKQuantPanelV128
        {
            int chunkBytes = 4 * TP.UnitBytes;
            for (int i = 0; i < blocks; i++, dst += XBlockBytes)
            {
                sbyte* q = x.Q + (long)i * QK;
                for (int c = 0; c < QK / chunkBytes; c++)
                    Interleave<TP>(q + chunkBytes * c, dst + chunkBytes * c);
                short* bs = x.BSums + 16 * i;
                int* pairs = (int*)(dst + QK);
                for (int j = 0; j < 8; j++) pairs[j] = bs[2 * j] + bs[2 * j + 1];
            }
        }

        /// <summary>
        /// Units 0–3 (4 × u bytes at <paramref name="src"/>) → u/4 vectors, vector k = bytes 4k … 4k + 3 of each unit:
        /// one <see cref="Int8V128.Transpose4"/> per 16 bytes of a unit.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Interleave<TP>(sbyte* src, byte* dst) where TP : struct, IKQuantPanelV128
        {
            int u = TP.UnitBytes;
            for (int h = 0; h < u; h += 16)
                Int8V128.Transpose4(Vector128.Load((int*)(src + h)), Vector128.Load((int*)(src + u + h)),
                    Vector128.Load((int*)(src + 2 * u + h)), Vector128.Load((int*)(src + 3 * u + h)), (int*)(dst + 4 * h));
        }

        /// <summary>Rows [g, g + count) into the panel; rows past count are zeros (computed by the tile, not stored).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackRows<TP>(in WeightMatrix w, int g, int count, int blocks, byte* panel) where TP : struct, IKQuantPanelV128
        {
            if (count < TileRows) new Span<byte>(panel, blocks * PanelBlockBytes).Clear();
            int chunkBytes = 4 * TP.UnitBytes;
            sbyte* q = stackalloc sbyte[QK];
            int* scales = stackalloc int[16];
            int* mins = stackalloc int[8];
            for (int r = 0; r < count; r++)
            {
                byte* row = w.Row(g + r);
                for (int i = 0; i < blocks; i++)
                {
                    byte* p = panel + (long)i * PanelBlockBytes;
                    TP.Unpack(row + (long)i * TP.BlockBytes, q, scales, mins, out float d, out float dmin);
                    for (int c = 0; c < QK / chunkBytes; c++)
                    {
                        Interleave<TP>(q + chunkBytes * c, p + (TileRows * c + r) * chunkBytes);
                        Vector128.Load(scales + 4 * c).Store((int*)(p + ScalesAt + 64 * c + 16 * r));
                    }
                    if (TP.HasMins)
                        for (int j = 0; j < 8; j++) ((int*)(p + MinsAt + 16 * j))[r] = mins[j];
                    ((float*)(p + DAt))[r] = d;
                    ((float*)(p + DMinAt))[r] = dmin;
                }
            }
        }

        /// <summary>
        /// <see cref="TileRows"/> packed rows × <typeparamref name="TN"/> (1 or 2) tokens: per chunk 8 SDOT chains
        /// into int32 accumulators, weighed by the unit scales (<c>mla</c>) into 8 super-block sums; per super-block the
        /// rows' sums gathered by pairwise adds, the mins' sums by 8 <c>mla</c>, then the lane-wise float step of the scalar reference.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Tile<TN, TP>(byte* panel, int blocks, byte* x, long tokenBytes, float* d8, float* y, int rows, int count)
            where TN : struct, ITokenCount where TP : struct, IKQuantPanelV128
        {
            bool two = TN.N > 1;
            int chunkBytes = 4 * TP.UnitBytes;
            Vector128<float> acc0 = Vector128<float>.Zero, acc1 = Vector128<float>.Zero;
            byte* p = panel;
            byte* x0 = x, x1 = x + tokenBytes;
            for (int i = 0; i < blocks; i++, p += PanelBlockBytes, x0 += XBlockBytes, x1 += XBlockBytes)
            {
                Vector128<int> s00 = default, s10 = default, s20 = default, s30 = default, s01 = default, s11 = default, s21 = default, s31 = default;
                for (int c = 0; c < QK / chunkBytes; c++)
                {
                    sbyte* pc = (sbyte*)p + TileRows * chunkBytes * c, xc0 = (sbyte*)x0 + chunkBytes * c, xc1 = (sbyte*)x1 + chunkBytes * c;
                    Vector128<int> i00 = default, i10 = default, i20 = default, i30 = default, i01 = default, i11 = default, i21 = default, i31 = default;
                    for (int k = 0; k < chunkBytes; k += 16)
                    {
                        Vector128<sbyte> v0 = Vector128.Load(xc0 + k), v1 = two ? Vector128.Load(xc1 + k) : default;
                        Vector128<sbyte> w0 = Vector128.Load(pc + k);
                        i00 = Int8V128.DotI8(i00, w0, v0);
                        if (two) i01 = Int8V128.DotI8(i01, w0, v1);
                        Vector128<sbyte> w1 = Vector128.Load(pc + chunkBytes + k);
                        i10 = Int8V128.DotI8(i10, w1, v0);
                        if (two) i11 = Int8V128.DotI8(i11, w1, v1);
                        Vector128<sbyte> w2 = Vector128.Load(pc + 2 * chunkBytes + k);
                        i20 = Int8V128.DotI8(i20, w2, v0);
                        if (two) i21 = Int8V128.DotI8(i21, w2, v1);
                        Vector128<sbyte> w3 = Vector128.Load(pc + 3 * chunkBytes + k);
                        i30 = Int8V128.DotI8(i30, w3, v0);
                        if (two) i31 = Int8V128.DotI8(i31, w3, v1);
                    }
                    int* sc = (int*)(p + ScalesAt + 64 * c);
                    Vector128<int> c0 = Vector128.Load(sc), c1 = Vector128.Load(sc + 4), c2 = Vector128.Load(sc + 8), c3 = Vector128.Load(sc + 12);
                    s00 = Int8V128.MultiplyAdd(s00, i00, c0); s10 = Int8V128.MultiplyAdd(s10, i10, c1);
                    s20 = Int8V128.MultiplyAdd(s20, i20, c2); s30 = Int8V128.MultiplyAdd(s30, i30, c3);
                    if (two)
                    {
                        s01 = Int8V128.MultiplyAdd(s01, i01, c0); s11 = Int8V128.MultiplyAdd(s11, i11, c1);
                        s21 = Int8V128.MultiplyAdd(s21, i21, c2); s31 = Int8V128.MultiplyAdd(s31, i31, c3);
                    }
                }
                // Lane r: row r's isum (exact int32).
                acc0 = Step<TP>(p, Int8V128.AddPairs(Int8V128.AddPairs(s00, s10), Int8V128.AddPairs(s20, s30)), (int*)(x0 + QK), d8[i], acc0);
                if (two)
                    acc1 = Step<TP>(p, Int8V128.AddPairs(Int8V128.AddPairs(s01, s11), Int8V128.AddPairs(s21, s31)), (int*)(x1 + QK), d8[blocks + i], acc1);
            }
            for (int r = 0; r < count; r++)
            {
                y[r] = acc0.GetElement(r);
                if (two) y[rows + r] = acc1.GetElement(r);
            }
        }

        /// <summary>
        /// One super-block of 4 rows for one token: <c>acc + ((d·d8)·isum − (dmin·d8)·msum)</c> lane-wise, each operation
        /// rounded on its own — the scalar reference's expression (Q6_K: <c>acc + (d·d8)·isum</c>).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> Step<TP>(byte* p, Vector128<int> isum, int* pairSums, float d8, Vector128<float> acc) where TP : struct, IKQuantPanelV128
        {
            var vd8 = Vector128.Create(d8);
            Vector128<float> term = Vector128.Load((float*)(p + DAt)) * vd8 * Vector128.ConvertToSingle(isum);
            if (TP.HasMins)
            {
                int* m = (int*)(p + MinsAt);
                Vector128<int> msum = Vector128.Load(m) * Vector128.Create(pairSums[0]);
                for (int j = 1; j < 8; j++) msum = Int8V128.MultiplyAdd(msum, Vector128.Load(m + 4 * j), Vector128.Create(pairSums[j]));
                term -= Vector128.Load((float*)(p + DMinAt)) * vd8 * Vector128.ConvertToSingle(msum);
            }
            return acc + term;
        }
    }
}
