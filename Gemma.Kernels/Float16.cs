using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// IEEE binary16 elements read as float32 (the compact KV cache). Exact and branch-free: .NET's <c>(float)Half</c> is
/// a long branchy software routine and .NET 10 exposes no <c>vcvtph2ps</c>, so exponent+mantissa are placed at
/// float32's mantissa boundary and rebiased by an integer add of 112 to the exponent (exact for normals); subnormals
/// are rebiased by 113 instead — the float32 <c>2⁻¹⁴·(1 + em/1024)</c> — and <c>2⁻¹⁴</c> subtracted: <c>em · 2⁻²⁴</c>,
/// exact (Sterbenz), ≥ 2⁻²⁴ or +0, a float32 normal; inf/NaN get a second 112 (exponent 255, payload kept). One integer
/// add and one float subtract for the subnormal lanes, where an int → float convert and a multiply were before: on an
/// ARM core the same count (and shorter latency); under qemu, which runs every float lane through a softfloat call
/// (<c>scvtf</c>: one helper call per lane), half the float lanes of the conversion. No operand or result is ever a float32 denormal: the
/// earlier form (the shifted bits read as a float32 denormal, times 2¹¹²) paid a microcode assist per subnormal on
/// x86 — ≈ 2× slower Q4_K/Q6_K decode on real files, whose block scales d are often fp16 subnormals (docs/performance.md,
/// issue 15). The one fp16 → f32 of the kernels: the Q8_0 and K-quant block scales use it too.
/// </summary>
internal readonly unsafe struct F16Row : IRowFormat
{
    private const float TwoPowMinus14 = 1f / 16384;      // 2⁻¹⁴, the smallest fp16 normal: subtracted from 2⁻¹⁴·(1 + em/1024)
    private const int SubnormalBias = 1 << 23;           // one more in float32's exponent field: 113 = 127 − 14
    private const int Rebias = 112 << 23;                // (127 − 15) in float32's exponent field

    public static int BytesPerElement => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, int col) => ToSingle(((ushort*)row)[col]);

    /// <summary>Exact fp16 bits → float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort h)
    {
        uint em = h & 0x7FFFu;
        uint sign = (uint)(h & 0x8000) << 16;
        uint normal = (em << 13) + Rebias;
        uint subnormal = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(normal + SubnormalBias) - TwoPowMinus14); // also 0 → +0
        uint magnitude = em < 0x0400 ? subnormal : em >= 0x7C00 ? normal + Rebias : normal; // inf / NaN: exponent 255
        return BitConverter.UInt32BitsToSingle(sign | magnitude);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, int col)
    {
        Vector256<ushort> raw = Vector256.Load((ushort*)row + col);
        return ToSingle((Avx512F.IsSupported ? Avx512F.ConvertToVector512UInt32(raw) : Vector512.WidenLower(raw.ToVector512Unsafe())).AsInt32());
    }

    /// <summary>Vector form of <see cref="ToSingle(ushort)"/> on the low 16 bits of each lane (bit-identical).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<int> h)
    {
        Vector512<int> em = h & Vector512.Create(0x7FFF);
        Vector512<int> sign = Vector512.ShiftLeft(h & Vector512.Create(0x8000), 16);
        Vector512<int> normal = Vector512.ShiftLeft(em, 13) + Vector512.Create(Rebias);
        Vector512<int> subnormal = ((normal + Vector512.Create(SubnormalBias)).AsSingle() - Vector512.Create(TwoPowMinus14)).AsInt32();
        Vector512<int> magnitude = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(em, Vector512.Create(0x0400)), normal, subnormal);
        magnitude = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00)), normal + Vector512.Create(Rebias), magnitude);
        return (sign | magnitude).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, int col)
    {
        Vector128<ushort> raw = Vector128.Load((ushort*)row + col);
        Vector256<int> h = (Avx2.IsSupported ? Avx2.ConvertToVector256Int32(raw).AsUInt32() : Vector256.WidenLower(raw.ToVector256Unsafe())).AsInt32();
        return ToSingle(h);
    }

    /// <summary>Vector form of <see cref="ToSingle(ushort)"/> on the low 16 bits of each lane (bit-identical).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<int> h)
    {
        Vector256<int> em = h & Vector256.Create(0x7FFF);
        Vector256<int> sign = Vector256.ShiftLeft(h & Vector256.Create(0x8000), 16);
        Vector256<int> normal = Vector256.ShiftLeft(em, 13) + Vector256.Create(Rebias);
        Vector256<int> subnormal = ((normal + Vector256.Create(SubnormalBias)).AsSingle() - Vector256.Create(TwoPowMinus14)).AsInt32();
        Vector256<int> magnitude = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x0400)), normal, subnormal);
        magnitude = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00)), normal + Vector256.Create(Rebias), magnitude);
        return (sign | magnitude).AsSingle();
    }

    /// <summary>
    /// 4 fp16 (one 64-bit load) → float32, the <see cref="ToSingle(Vector128{int})"/> bit trick. ARM64: <c>ldr d</c> +
    /// <c>uxtl</c> (no general-to-vector <c>ins</c> per 4 elements, as in <see cref="Bf16Row.Load128"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(byte* row, int col)
    {
        ushort* p = (ushort*)row + col;
        if (AdvSimd.Arm64.IsSupported) return ToSingle(AdvSimd.ZeroExtendWideningLower(AdvSimd.LoadVector64(p)).AsInt32());
        return ToSingle(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsUInt16()).AsInt32());
    }

    /// <summary>
    /// Vector form of <see cref="ToSingle(ushort)"/> on the low 16 bits of each lane (bit-identical). Both selects test
    /// with ≥: with AVX-512 that is a compare into a mask register and a masked blend, which (unlike the VEX-only
    /// <c>vpblendvb</c> a &lt; test gave) can use xmm16–31 — in the K-quant decode loop the VEX form pinned the
    /// conversion to xmm0–15 and the JIT spilled three loop-invariant zmm registers around it every super-block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ToSingle(Vector128<int> h)
    {
        Vector128<int> em = h & Vector128.Create(0x7FFF);
        Vector128<int> sign = Vector128.ShiftLeft(h & Vector128.Create(0x8000), 16);
        Vector128<int> normal = Vector128.ShiftLeft(em, 13) + Vector128.Create(Rebias);
        Vector128<int> subnormal = ((normal + Vector128.Create(SubnormalBias)).AsSingle() - Vector128.Create(TwoPowMinus14)).AsInt32();
        Vector128<int> magnitude = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(em, Vector128.Create(0x0400)), normal, subnormal);
        magnitude = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(em, Vector128.Create(0x7C00)), normal + Vector128.Create(Rebias), magnitude);
        return (sign | magnitude).AsSingle();
    }
}

/// <summary>
/// Finite IEEE binary16 elements read as float32 <b>times 2⁻¹¹²</b> — three vector instructions (sign-extending
/// widen, shift left by 13, mask) instead of <see cref="F16Row"/>'s eleven: the shift puts exponent and mantissa at
/// float32's mantissa boundary and the sign at bit 28, the mask keeps bit 31 (a sign copy) and clears bits 28–30.
/// Exact: 2⁻¹¹²·h is a float32 (normal for fp16 normals, denormal for fp16 subnormals). The caller multiplies the other
/// factor by <see cref="Compensation"/> = 2¹¹² (exact while that factor is below 2¹⁶ in magnitude), so every product,
/// and therefore every FMA result, is bit-identical to reading through <see cref="F16Row"/>. Inf and NaN halves read as
/// finite values: callers guarantee finite data (the KV cache clamps to ±65504 on write).
/// </summary>
internal readonly unsafe struct F16ScaledRow : IRowFormat
{
    /// <summary>2¹¹²: the factor the other operand carries.</summary>
    public const float Compensation = 5.192296858534828E+33f;

    /// <summary>The largest magnitude the other operand may have (so that it times 2¹¹² stays finite).</summary>
    public const float MaxOtherMagnitude = 32768f;

    public static int BytesPerElement => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, int col) => BitConverter.Int32BitsToSingle(((short*)row)[col] << 13 & unchecked((int)0x8FFFFFFF));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, int col)
    {
        Vector256<short> raw = Vector256.Load((short*)row + col);
        Vector512<int> h = Avx512F.IsSupported ? Avx512F.ConvertToVector512Int32(raw) : Vector512.WidenLower(raw.ToVector512Unsafe());
        return (Vector512.ShiftLeft(h, 13) & Vector512.Create(unchecked((int)0x8FFFFFFF))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, int col)
    {
        Vector128<short> raw = Vector128.Load((short*)row + col);
        Vector256<int> h = Avx2.IsSupported ? Avx2.ConvertToVector256Int32(raw) : Vector256.WidenLower(raw.ToVector256Unsafe());
        return (Vector256.ShiftLeft(h, 13) & Vector256.Create(unchecked((int)0x8FFFFFFF))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(byte* row, int col)
    {
        short* p = (short*)row + col;
        Vector128<int> h = AdvSimd.Arm64.IsSupported
            ? AdvSimd.SignExtendWideningLower(AdvSimd.LoadVector64(p))                    // ldr d + sxtl
            : Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsInt16());
        return (Vector128.ShiftLeft(h, 13) & Vector128.Create(unchecked((int)0x8FFFFFFF))).AsSingle();
    }
}
