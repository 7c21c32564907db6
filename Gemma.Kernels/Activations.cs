namespace Gemma.Kernels;

/// <summary>Element-wise activations.</summary>
public static class Activations
{
    // sqrt(2/π), the constant of the tanh approximation of GELU.
    private const float SqrtTwoOverPi = 0.7978845608028654f;

    /// <summary>GELU, tanh approximation: <c>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c>.</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + MathF.Tanh(SqrtTwoOverPi * (x + 0.044715f * x * x * x)));

    /// <summary>Gated GELU (GeGLU): <c>output[i] = GeluTanh(gate[i]) · up[i]</c>; output may alias gate.</summary>
    public static void GeluTanhMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> output)
    {
        if (up.Length < gate.Length || output.Length < gate.Length) throw new ArgumentException("Length mismatch.");
        for (int i = 0; i < gate.Length; i++) output[i] = GeluTanh(gate[i]) * up[i];
    }

    /// <summary>Soft-capping <c>x = cap · tanh(x / cap)</c> in place.</summary>
    public static void SoftCapInPlace(Span<float> x, float cap)
    {
        for (int i = 0; i < x.Length; i++) x[i] = cap * MathF.Tanh(x[i] / cap);
    }

    /// <summary>Index of the largest value (first one on ties); -1 for an empty span. NaN never wins.</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = -1;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] > bestValue || best < 0 && !float.IsNaN(x[i])) { best = i; bestValue = x[i]; }
        }
        return best;
    }

    /// <summary><c>x[i] += y[i]</c> (residual connections).</summary>
    public static void AddInPlace(Span<float> x, ReadOnlySpan<float> y)
    {
        for (int i = 0; i < x.Length; i++) x[i] += y[i];
    }

    /// <summary><c>x[i] *= factor</c>.</summary>
    public static void ScaleInPlace(Span<float> x, float factor)
    {
        for (int i = 0; i < x.Length; i++) x[i] *= factor;
    }
}
