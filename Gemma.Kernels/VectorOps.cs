using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
    /// <summary>Every lane = <paramref name="value"/>.</summary>
    static abstract TV Create(float value);
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    /// <summary><c>a · b + c</c>, one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    /// <summary>Horizontal sum in the width's fixed order.</summary>
    static abstract float Sum(TV v);
    /// <summary><see cref="Lanes"/> weight elements from <paramref name="col"/> widened to float32.</summary>
    static abstract TV LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat;
}

/// <summary>512-bit vectors (16 lanes).</summary>
internal readonly unsafe struct Ops512 : IVectorOps<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat => TRow.Load512(row, col);
}

/// <summary>256-bit vectors (8 lanes).</summary>
internal readonly unsafe struct Ops256 : IVectorOps<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadRow<TRow>(byte* row, int col) where TRow : IRowFormat => TRow.Load256(row, col);
}
