using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Cli.Bench;

/// <summary>
/// Bytes and FLOPs one token costs, for stating a measured speed as a fraction of the machine's limits.
/// <list type="bullet">
/// <item>Decode reads every weight matrix once per token (the tied output head included; the embedding lookup reads
/// one row, negligible) plus the keys and values it attends over; it multiplies 2 FLOPs per weight plus attention.</item>
/// <item>Prefill of n tokens does 2 FLOPs per layer-matrix weight per token, attention over the positions each token
/// sees, and the output head once for the last token.</item>
/// <item>Attention per visible key and query head: q·k and the weighted value add, 2 · 2 · head_dim FLOPs; a decode
/// step reads each visible key and value once per KV head.</item>
/// </list>
/// Norms, RoPE, GELU and softmax are left out (below 1 % of the FLOPs at 2B).
/// </summary>
/// <param name="LayerMatrixBytes">Bytes of the q/k/v/o/gate/up/down matrices of all layers.</param>
/// <param name="LayerMatrixParams">Weights of those matrices.</param>
/// <param name="HeadBytes">Bytes of the output head (the tied embedding).</param>
/// <param name="HeadParams">Weights of the output head.</param>
/// <param name="Heads">Query heads per layer.</param>
/// <param name="KvHeads">Key/value heads per layer.</param>
/// <param name="HeadDim">Dimension of a head.</param>
/// <param name="Windows">Attention window of each layer (<see cref="int.MaxValue"/> for global layers).</param>
/// <param name="KvBytesPerElement">Bytes of one cached key or value element (4 for float32, 2 for bf16).</param>
internal sealed record ModelCost(double LayerMatrixBytes, double LayerMatrixParams, double HeadBytes, double HeadParams,
    int Heads, int KvHeads, int HeadDim, int[] Windows, int KvBytesPerElement)
{
    /// <summary>The cost model of a loaded model and the KV element size of its contexts.</summary>
    public static ModelCost Of(GemmaModel model, int kvBytesPerElement)
    {
        double bytes = 0, parameters = 0;
        foreach (LayerWeights w in model.Weights.Layers)
            foreach (WeightMatrix m in (ReadOnlySpan<WeightMatrix>)[w.QProj, w.KProj, w.VProj, w.OProj, w.GateProj, w.UpProj, w.DownProj])
            {
                bytes += m.ByteLength;
                parameters += (double)m.Rows * m.Cols;
            }
        WeightMatrix head = model.Weights.OutputHead;
        GemmaConfig c = model.Config;
        int[] windows = Enumerable.Range(0, c.NumLayers).Select(c.AttentionWindow).ToArray();
        return new ModelCost(bytes, parameters, head.ByteLength, (double)head.Rows * head.Cols, c.NumHeads, c.NumKvHeads, c.HeadDim,
            windows, kvBytesPerElement);
    }

    /// <summary>Keys a query at <paramref name="position"/> sees in each layer, summed over layers.</summary>
    public double VisibleKeys(int position) => Windows.Sum(w => (double)Math.Min(position + 1L, w));

    /// <summary>Bytes of keys and values one decode step at <paramref name="position"/> reads.</summary>
    public double KvBytesRead(int position) => 2.0 * KvHeads * HeadDim * KvBytesPerElement * VisibleKeys(position);

    /// <summary>Attention FLOPs of one token at <paramref name="position"/>.</summary>
    public double AttentionFlops(int position) => 4.0 * Heads * HeadDim * VisibleKeys(position);

    /// <summary>Bytes a decode step at <paramref name="position"/> reads: every weight once, plus its keys and values.</summary>
    public double DecodeBytesPerToken(int position) => LayerMatrixBytes + HeadBytes + KvBytesRead(position);

    /// <summary>FLOPs of a decode step at <paramref name="position"/>.</summary>
    public double DecodeFlopsPerToken(int position) => 2 * (LayerMatrixParams + HeadParams) + AttentionFlops(position);

    /// <summary>FLOPs per token of prefilling <paramref name="n"/> tokens from position <paramref name="start"/> (logits of the last one only).</summary>
    public double PrefillFlopsPerToken(int start, int n)
    {
        double attention = 0;
        for (int p = start; p < start + n; p++) attention += AttentionFlops(p);
        return 2 * LayerMatrixParams + (attention + 2 * HeadParams) / n;
    }

    /// <summary>Weight bytes a prefill reads per token when each chunk of <paramref name="chunk"/> tokens reads every layer matrix once.</summary>
    public double PrefillBytesPerToken(int n, int chunk)
    {
        int chunks = (n + chunk - 1) / chunk;
        return (chunks * LayerMatrixBytes + HeadBytes) / n;
    }
}

/// <summary>Measured speeds as fractions of the machine's limits.</summary>
internal static class Roofline
{
    /// <summary>Decode speed over the read roofline: tokens/s × bytes per token ÷ read bandwidth.</summary>
    public static double DecodeFraction(double tokensPerSecond, double bytesPerToken, double readGBPerSecond)
        => tokensPerSecond * bytesPerToken / (readGBPerSecond * 1e9);

    /// <summary>Prefill speed over the FMA peak: tokens/s × FLOPs per token ÷ peak FLOP/s.</summary>
    public static double PrefillFraction(double tokensPerSecond, double flopsPerToken, double fmaGFlopPerSecond)
        => tokensPerSecond * flopsPerToken / (fmaGFlopPerSecond * 1e9);

    /// <summary>The roofline's attainable GFLOP/s at arithmetic intensity <paramref name="flopPerByte"/>.</summary>
    public static double Attainable(double flopPerByte, double readGBPerSecond, double fmaGFlopPerSecond)
        => Math.Min(fmaGFlopPerSecond, flopPerByte * readGBPerSecond);
}
