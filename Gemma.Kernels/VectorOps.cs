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
    /// <summary>Horizontal sum in the width's fixed order.</summary>
    static abstract float Sum(TV v);
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Vector128.Sum(v);
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
