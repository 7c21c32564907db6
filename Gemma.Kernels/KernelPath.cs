using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Gemma.Kernels;

/// <summary>
/// Names the SIMD path the kernels take in this process, decided by the same JIT-time checks the kernels dispatch on
/// (<c>Vector512/256/128.IsHardwareAccelerated</c>, then the instruction sets the int8 kernels use), for
/// <c>gemma info</c>, <c>bench --json</c> and the tests' expected-path check.
/// </summary>
internal static class KernelPath
{
    /// <summary><c>"Vector512"</c>, <c>"Vector256"</c>, <c>"Vector128"</c> or <c>"scalar"</c>: the vector width every kernel picks.</summary>
    public static string Width =>
        Vector512.IsHardwareAccelerated ? "Vector512"
        : Vector256.IsHardwareAccelerated ? "Vector256"
        : Vector128.IsHardwareAccelerated ? "Vector128"
        : "scalar";

    /// <summary>
    /// The width and the instruction sets behind it, e.g. <c>"Vector512 (AVX-512)"</c>, <c>"Vector256 (AVX2)"</c>,
    /// <c>"Vector256 (AVX2, AVX-VNNI)"</c>, <c>"Vector128 (AdvSimd, SDOT)"</c>, <c>"Vector128 (AdvSimd)"</c>,
    /// <c>"Vector128 (SSE, FMA)"</c>, <c>"Vector128 (SSE)"</c> (no FMA: multiply and add rounded separately) or <c>"scalar"</c>.
    /// </summary>
    public static string Current => Width switch
    {
        "Vector512" => "Vector512 (AVX-512)",
        "Vector256" => AvxVnni.IsSupported ? "Vector256 (AVX2, AVX-VNNI)" : "Vector256 (AVX2)",
        "Vector128" when AdvSimd.IsSupported => Dp.IsSupported ? "Vector128 (AdvSimd, SDOT)" : "Vector128 (AdvSimd)",
        "Vector128" => Ops128.HasFma ? "Vector128 (SSE, FMA)" : "Vector128 (SSE)",
        _ => "scalar",
    };
}
