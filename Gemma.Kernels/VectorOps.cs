using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// The float32 vector operations the matrix kernels need, implemented once per width by an empty struct, so a
/// kernel is written once as a generic method over <c>TOps</c> and the JIT specializes it per width (like
/// TensorPrimitives' operator structs). Accumulators stay separate locals of type <typeparamref name="TV"/>.
/// </summary>
internal unsafe interface IVectorOps<TV> where TV : struct
{
    /// <summary>float32 lanes per vector.</summary>
    static abstract int Lanes { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    /// <summary><c>a · b + c</c>, one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    /// <summary>
    /// Horizontal sum in the halving order: lane i plus lane i + Lanes/2, then the same on the half, down to one lane
    /// (16 lanes: s8[i] = v[i] + v[i+8], s4[i] = s8[i] + s8[i+4], s2[i] = s4[i] + s4[i+2], s2[0] + s2[1]).
    /// </summary>
    static abstract float Sum(TV v);
    /// <summary>
    /// <c>sums[i] = Sum(vector i)</c> for the <see cref="Lanes"/> vectors stored one after another at
    /// <paramref name="vectors"/>, bit-identical to <see cref="Sum"/> but as one transposed reduction
    /// (Lanes − 1 vector adds instead of Lanes horizontal sums).
    /// </summary>
    static abstract void SumEach(float* vectors, float* sums);
    /// <summary><see cref="Lanes"/> weight elements from <paramref name="col"/> widened to float32.</summary>
    static abstract TV LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat;

    // Element-wise kernels (RmsNorm, Rope, GELU, ArgMax): plain IEEE operations, one rounding each, no contraction.
    static abstract TV Create(float value);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Subtract(TV a, TV b);
    /// <summary>Lane-wise maximum with NaN lanes of <paramref name="v"/> ignored (they count as −∞).</summary>
    static abstract TV MaxIgnoringNaN(TV m, TV v);
    /// <summary>Bit i set where lane i of <paramref name="a"/> equals lane i of <paramref name="b"/>.</summary>
    static abstract ulong EqualsMask(TV a, TV b);
}

/// <summary>512-bit vectors (16 lanes).</summary>
internal readonly unsafe struct Ops512 : IVectorOps<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Ops256.Sum(v.GetLower() + v.GetUpper());

    /// <summary>
    /// Four halving steps over 16 vectors: 128-bit-lane shuffles pair lanes i and i + 8 (8 adds), i and i + 4 (4 adds),
    /// 64-bit unpacks i and i + 2 (2 adds), <c>vshufps</c> the last pairs (1 add); the result lanes come out as a 4 × 4
    /// transpose of the vector order, which one <c>vpermps</c> undoes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SumEach(float* v, float* sums)
    {
        if (!Avx512F.IsSupported)
        {
            for (int i = 0; i < 16; i++) sums[i] = Sum(Vector512.Load(v + 16 * i));
            return;
        }
        SumEach(Vector512.Load(v), Vector512.Load(v + 16), Vector512.Load(v + 32), Vector512.Load(v + 48),
            Vector512.Load(v + 64), Vector512.Load(v + 80), Vector512.Load(v + 96), Vector512.Load(v + 112),
            Vector512.Load(v + 128), Vector512.Load(v + 144), Vector512.Load(v + 160), Vector512.Load(v + 176),
            Vector512.Load(v + 192), Vector512.Load(v + 208), Vector512.Load(v + 224), Vector512.Load(v + 240), sums);
    }

    /// <summary>
    /// <see cref="SumEach(float*, float*)"/> of 16 vectors held in registers (needs <c>Avx512F</c>): a kernel whose last
    /// pass produces the vectors skips storing and reloading them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void SumEach(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7,
        Vector512<float> v8, Vector512<float> v9, Vector512<float> v10, Vector512<float> v11,
        Vector512<float> v12, Vector512<float> v13, Vector512<float> v14, Vector512<float> v15, float* sums)
    {
        // u_k lanes 0–7: s8 of vector 2k, lanes 8–15: s8 of vector 2k + 1.
        Vector512<float> u0 = Halves(v0, v1), u1 = Halves(v2, v3), u2 = Halves(v4, v5), u3 = Halves(v6, v7);
        Vector512<float> u4 = Halves(v8, v9), u5 = Halves(v10, v11), u6 = Halves(v12, v13), u7 = Halves(v14, v15);
        // w_m 128-bit quarter r: s4 of vector 4m + r.
        Vector512<float> w0 = Quarters(u0, u1), w1 = Quarters(u2, u3), w2 = Quarters(u4, u5), w3 = Quarters(u6, u7);
        // x0 quarter r: s2 of vectors r and 4 + r; x1: 8 + r and 12 + r.
        Vector512<float> x0 = Pairs(w0, w1), x1 = Pairs(w2, w3);
        // y[4r + c] = sum of vector 4c + r.
        Vector512<float> y = Avx512F.Shuffle(x0, x1, 0x88) + Avx512F.Shuffle(x0, x1, 0xDD);
        Avx512F.PermuteVar16x32(y, Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)).Store(sums);

        static Vector512<float> Halves(Vector512<float> a, Vector512<float> b)
            => Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10);
        static Vector512<float> Quarters(Vector512<float> a, Vector512<float> b)
            => Avx512F.Shuffle4x128(a, b, 0b10_00_10_00) + Avx512F.Shuffle4x128(a, b, 0b11_01_11_01);
        static Vector512<float> Pairs(Vector512<float> a, Vector512<float> b)
            => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat => TRow.Load512(row, col);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MaxIgnoringNaN(Vector512<float> m, Vector512<float> v) =>
        Vector512.Max(m, Vector512.ConditionalSelect(Vector512.Equals(v, v), v, Vector512.Create(float.NegativeInfinity)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong EqualsMask(Vector512<float> a, Vector512<float> b) => Vector512.Equals(a, b).ExtractMostSignificantBits();
}

/// <summary>256-bit vectors (8 lanes).</summary>
internal readonly unsafe struct Ops256 : IVectorOps<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Sum(v.GetLower() + v.GetUpper());

    /// <summary>The last two halving steps of 4 lanes: (x0 + x2) + (x1 + x3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sum(Vector128<float> x)
    {
        Vector128<float> s2 = x + Vector128.Shuffle(x, Vector128.Create(2, 3, 0, 1));
        return s2.ToScalar() + s2.GetElement(1);
    }

    /// <summary>
    /// Three halving steps over 8 vectors (<c>vperm2f128</c>, 64-bit unpacks, <c>vshufps</c>: 4 + 2 + 1 adds); the result
    /// lanes come out as a 2 × 4 transpose of the vector order, which one <c>vpermps</c> undoes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SumEach(float* v, float* sums)
    {
        if (!Avx2.IsSupported)
        {
            for (int i = 0; i < 8; i++) sums[i] = Sum(Vector256.Load(v + 8 * i));
            return;
        }
        // u_k: s4 of vector 2k | s4 of vector 2k + 1.
        Vector256<float> u0 = Halves(v, 0), u1 = Halves(v, 2), u2 = Halves(v, 4), u3 = Halves(v, 6);
        // x0 128-bit half h: s2 of vectors h and 2 + h; x1: 4 + h and 6 + h.
        Vector256<float> x0 = Pairs(u0, u1), x1 = Pairs(u2, u3);
        // y[4h + c] = sum of vector 2c + h.
        Vector256<float> y = Avx.Shuffle(x0, x1, 0x88) + Avx.Shuffle(x0, x1, 0xDD);
        Avx2.PermuteVar8x32(y, Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).Store(sums);

        static Vector256<float> Halves(float* v, int k)
        {
            Vector256<float> a = Vector256.Load(v + 8 * k), b = Vector256.Load(v + 8 * k + 8);
            return Avx.Permute2x128(a, b, 0x20) + Avx.Permute2x128(a, b, 0x31);
        }
        static Vector256<float> Pairs(Vector256<float> a, Vector256<float> b)
            => Avx.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle() + Avx.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat => TRow.Load256(row, col);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MaxIgnoringNaN(Vector256<float> m, Vector256<float> v) =>
        Vector256.Max(m, Vector256.ConditionalSelect(Vector256.Equals(v, v), v, Vector256.Create(float.NegativeInfinity)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong EqualsMask(Vector256<float> a, Vector256<float> b) => Vector256.Equals(a, b).ExtractMostSignificantBits();
}

/// <summary>
/// 128-bit vectors (4 lanes): AdvSimd (NEON) on ARM64, SSE on x86. <see cref="Fma"/> is one <c>fmla</c> on ARM64 and
/// one <c>vfmadd</c> on x86 with FMA; on an x86 without FMA (pre-2013 CPUs, or <c>DOTNET_EnableAVX2=0</c>)
/// <c>Vector128.FusedMultiplyAdd</c> would be a per-lane software routine (~6× slower than a whole SIMD loop), so
/// there the multiply and the add are rounded separately — still one fixed order per output (batch-invariant).
/// </summary>
internal readonly unsafe struct Ops128 : IVectorOps<Vector128<float>>
{
    public static int Lanes => 4;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        HasFma ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Ops256.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SumEach(float* v, float* sums)
    {
        for (int i = 0; i < 4; i++) sums[i] = Sum(Vector128.Load(v + 4 * i));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat => TRow.Load128(row, col);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Create(float value) => Vector128.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MaxIgnoringNaN(Vector128<float> m, Vector128<float> v) =>
        Vector128.Max(m, Vector128.ConditionalSelect(Vector128.Equals(v, v), v, Vector128.Create(float.NegativeInfinity)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static ulong EqualsMask(Vector128<float> a, Vector128<float> b) => Vector128.Equals(a, b).ExtractMostSignificantBits();

    /// <summary>A fused multiply-add instruction exists for 128-bit vectors (JIT-time constant).</summary>
    public static bool HasFma => AdvSimd.IsSupported || System.Runtime.Intrinsics.X86.Fma.IsSupported;
}
