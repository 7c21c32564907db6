using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// How a float kernel reads weight row elements as float32 — the decode loads and the GEMM's panel unpacker
/// (<c>MatMul.Float.cs</c> widens <see cref="Load512"/>/<see cref="Load256"/> chunks into its float32 panel). Implemented
/// by empty structs so the JIT specializes each kernel per format and inlines the loads (static abstract members, no
/// virtual calls). A new element type with a float decode (e.g. f16, or a block format whose 16/8-element chunks never
/// straddle blocks) is one more struct here plus one dispatch line in <c>MatMul.LinearWork.Run</c>.
/// </summary>
internal unsafe interface IRowFormat
{
    /// <summary>Bytes per stored element.</summary>
    static abstract int BytesPerElement { get; }
    /// <summary>Element <paramref name="col"/> of the row as float32.</summary>
    static abstract float Load(byte* row, int col);
    /// <summary>Elements [col, col + 16) as float32.</summary>
    static abstract Vector512<float> Load512(byte* row, int col);
    /// <summary>Elements [col, col + 8) as float32.</summary>
    static abstract Vector256<float> Load256(byte* row, int col);
    /// <summary>Elements [col, col + 4) as float32 (the AdvSimd / SSE path).</summary>
    static abstract Vector128<float> Load128(byte* row, int col);
}

/// <summary>IEEE float32 weights.</summary>
internal readonly unsafe struct F32Row : IRowFormat
{
    public static int BytesPerElement => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, int col) => ((float*)row)[col];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, int col) => Vector512.Load((float*)row + col);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, int col) => Vector256.Load((float*)row + col);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(byte* row, int col) => Vector128.Load((float*)row + col);
}

/// <summary>
/// bfloat16 weights: widening is exact — zero-extend each ushort to 32 bits and shift left by 16
/// (vpmovzxwd + vpslld), which puts the bf16 bits in the high half of a float32.
/// </summary>
internal readonly unsafe struct Bf16Row : IRowFormat
{
    public static int BytesPerElement => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, int col) => BFloat16.ToSingle(((ushort*)row)[col]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, int col)
    {
        Vector256<ushort> raw = Vector256.Load((ushort*)row + col);
        Vector512<uint> wide = Avx512F.IsSupported
            ? Avx512F.ConvertToVector512UInt32(raw)
            : Vector512.WidenLower(raw.ToVector512Unsafe());
        return Vector512.ShiftLeft(wide, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, int col)
    {
        Vector128<ushort> raw = Vector128.Load((ushort*)row + col);
        Vector256<uint> wide = Avx2.IsSupported
            ? Avx2.ConvertToVector256Int32(raw).AsUInt32()
            : Vector256.WidenLower(raw.ToVector256Unsafe());
        return Vector256.ShiftLeft(wide, 16).AsSingle();
    }

    /// <summary>
    /// 4 bf16 (one 64-bit load) → float32. ARM64: <c>ldr d</c> straight into a vector register (not <c>ldr x</c> +
    /// <c>ins v.d[0], x</c>, a general-to-vector transfer per 4 weights), then one <c>zip1</c> with zero puts each ushort
    /// in the high half of its 32-bit lane; elsewhere the portable widen + shift (<c>pmovzxwd</c>/<c>punpcklwd</c> + <c>pslld</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(byte* row, int col)
    {
        ushort* p = (ushort*)row + col;
        if (AdvSimd.Arm64.IsSupported) return AdvSimd.Arm64.ZipLow(Vector128<ushort>.Zero, AdvSimd.LoadVector64(p).ToVector128Unsafe()).AsSingle();
        Vector128<ushort> raw = Vector128.CreateScalarUnsafe(*(ulong*)p).AsUInt16();
        return Vector128.ShiftLeft(Vector128.WidenLower(raw), 16).AsSingle();
    }
}
