using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Gemma.Kernels;

/// <summary>Element-wise activations.</summary>
/// <remarks>
/// tanh comes from <see cref="TensorPrimitives.Tanh{T}(ReadOnlySpan{T}, Span{T})"/> (vectorized, about 1 ulp), applied to
/// chunks in a stack buffer, so the SIMD paths keep float32 accuracy; no fast approximations.
/// </remarks>
internal static unsafe class Activations
{
    // sqrt(2/π), the constant of the tanh approximation of GELU.
    private const float SqrtTwoOverPi = 0.7978845608028654f;
    private const float GeluCubic = 0.044715f;
    /// <summary>
    /// Elements per chunk (4 KB of stack): GeLU·up and soft-capping work through a span in chunks of this many from its
    /// start, so a span cut at multiples of it makes exactly the calls the whole span makes, on the same sub-spans — the
    /// same bits by construction, whatever TensorPrimitives does with a span's tail.
    /// </summary>
    internal const int Chunk = 1024;

    /// <summary>GELU, tanh approximation: <c>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c>.</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(SqrtTwoOverPi * (x + GeluCubic * x * x * x)));

    /// <summary>Gated GELU (GeGLU): <c>output[i] = GeluTanh(gate[i]) · up[i]</c>; output may alias gate.</summary>
    public static void GeluTanhMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> output)
    {
        if (up.Length < gate.Length || output.Length < gate.Length) throw new ArgumentException("Length mismatch.");
        if (!Vector128.IsHardwareAccelerated) { GeluTanhMulScalar(gate, up, output); return; }

        Span<float> t = stackalloc float[Chunk];
        for (int start = 0; start < gate.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, gate.Length - start);
            ReadOnlySpan<float> g = gate.Slice(start, len), u = up.Slice(start, len);
            Span<float> o = output.Slice(start, len), tc = t.Slice(0, len);
            // tc = √(2/π)·(g + 0.044715·g³), then tanh in place; the product is written last so output may alias gate.
            GeluInner(g, tc);
            TensorPrimitives.Tanh(tc, tc);
            GeluCombine(g, u, tc, o);
        }
    }

    /// <summary><c>t = √(2/π)·(g + 0.044715·g·g·g)</c>, same operation order as the scalar <see cref="GeluTanh(float)"/>.</summary>
    private static void GeluInner(ReadOnlySpan<float> g, Span<float> t)
    {
        fixed (float* pg = g)
        fixed (float* pt = t)
        {
            int i = Vector512.IsHardwareAccelerated ? GeluInner<Ops512, Vector512<float>>(pg, pt, g.Length)
                  : Vector256.IsHardwareAccelerated ? GeluInner<Ops256, Vector256<float>>(pg, pt, g.Length)
                  : GeluInner<Ops128, Vector128<float>>(pg, pt, g.Length); // callers checked Vector128
            for (; i < g.Length; i++) { float x = pg[i]; pt[i] = SqrtTwoOverPi * (x + GeluCubic * x * x * x); }
        }
    }

    private static int GeluInner<TOps, TV>(float* g, float* t, int n) where TOps : IVectorOps<TV> where TV : struct
    {
        int i = 0, L = TOps.Lanes;
        TV c = TOps.Create(SqrtTwoOverPi), k = TOps.Create(GeluCubic);
        for (; i + L <= n; i += L)
        {
            TV x = TOps.Load(g + i);
            TOps.Store(t + i, TOps.Multiply(c, TOps.Add(x, TOps.Multiply(TOps.Multiply(TOps.Multiply(k, x), x), x))));
        }
        return i;
    }

    /// <summary><c>o = 0.5·g·(1 + t)·u</c>, same operation order as the scalar <see cref="GeluTanh(float)"/>.</summary>
    private static void GeluCombine(ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> t, Span<float> o)
    {
        fixed (float* pg = g)
        fixed (float* pu = u)
        fixed (float* pt = t)
        fixed (float* po = o)
        {
            int i = Vector512.IsHardwareAccelerated ? GeluCombine<Ops512, Vector512<float>>(pg, pu, pt, po, g.Length)
                  : Vector256.IsHardwareAccelerated ? GeluCombine<Ops256, Vector256<float>>(pg, pu, pt, po, g.Length)
                  : GeluCombine<Ops128, Vector128<float>>(pg, pu, pt, po, g.Length);
            for (; i < g.Length; i++) po[i] = 0.5f * pg[i] * (1f + pt[i]) * pu[i];
        }
    }

    private static int GeluCombine<TOps, TV>(float* g, float* u, float* t, float* o, int n) where TOps : IVectorOps<TV> where TV : struct
    {
        int i = 0, L = TOps.Lanes;
        TV half = TOps.Create(0.5f), one = TOps.Create(1f);
        for (; i + L <= n; i += L)
            TOps.Store(o + i, TOps.Multiply(TOps.Multiply(TOps.Multiply(half, TOps.Load(g + i)), TOps.Add(one, TOps.Load(t + i))), TOps.Load(u + i)));
        return i;
    }

    /// <summary>Scalar reference of <see cref="GeluTanhMul"/>.</summary>
    internal static void GeluTanhMulScalar(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> output)
    {
        for (int i = 0; i < gate.Length; i++) output[i] = GeluTanh(gate[i]) * up[i];
    }

    /// <summary>Soft-capping <c>x = cap · tanh(x / cap)</c> in place.</summary>
    public static void SoftCapInPlace(Span<float> x, float cap)
    {
        if (!Vector128.IsHardwareAccelerated) { SoftCapScalar(x, cap); return; }
        for (int start = 0; start < x.Length; start += Chunk)
        {
            Span<float> c = x.Slice(start, Math.Min(Chunk, x.Length - start));
            TensorPrimitives.Divide(c, cap, c);
            TensorPrimitives.Tanh(c, c);
            TensorPrimitives.Multiply(c, cap, c);
        }
    }

    /// <summary>Scalar reference of <see cref="SoftCapInPlace"/>.</summary>
    internal static void SoftCapScalar(Span<float> x, float cap)
    {
        for (int i = 0; i < x.Length; i++) x[i] = cap * MathF.Tanh(x[i] / cap);
    }

    /// <summary>Index of the largest value (first one on ties); -1 for an empty or all-NaN span. NaN never wins.</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        if (Vector512.IsHardwareAccelerated && x.Length >= 16) return ArgMaxVector.Find<Ops512, Vector512<float>>(x);
        if (Vector256.IsHardwareAccelerated && x.Length >= 8) return ArgMaxVector.Find<Ops256, Vector256<float>>(x);
        if (Vector128.IsHardwareAccelerated && x.Length >= 4) return ArgMaxVector.Find<Ops128, Vector128<float>>(x);
        return ArgMaxScalar(x);
    }

    /// <summary>Scalar reference of <see cref="ArgMax"/>.</summary>
    internal static int ArgMaxScalar(ReadOnlySpan<float> x)
    {
        int best = -1;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] > bestValue || best < 0 && !float.IsNaN(x[i])) { best = i; bestValue = x[i]; }
        }
        return best;
    }

    /// <summary><c>x[i] += y[i]</c> (residual connections). TensorPrimitives' vector loop is as fast as a hand kernel here.</summary>
    public static void AddInPlace(Span<float> x, ReadOnlySpan<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("y is shorter than x.", nameof(y));
        TensorPrimitives.Add(x, y.Slice(0, x.Length), x);
    }

    /// <summary><c>x[i] *= factor</c>. TensorPrimitives' vector loop is as fast as a hand kernel here.</summary>
    public static void ScaleInPlace(Span<float> x, float factor) => TensorPrimitives.Multiply(x, factor, x);
}
