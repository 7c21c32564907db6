namespace Gemma.Core.Config;

/// <summary>The Gemma generation a checkpoint belongs to; decides tensor names and which norms exist.</summary>
public enum GemmaFamily
{
    /// <summary>Gemma 1 (<c>model_type: gemma</c>): no post-norms, no soft-caps, global attention only.</summary>
    Gemma1,
    /// <summary>Gemma 2 (<c>gemma2</c>): pre/post norms around attention and MLP, soft-caps, alternating sliding windows.</summary>
    Gemma2,
    /// <summary>Gemma 3 text (<c>gemma3_text</c>): Gemma 2 plus per-head q/k RMSNorm and a RoPE base per layer kind.</summary>
    Gemma3,
}

/// <summary>How far back one layer's attention may look.</summary>
public enum AttentionKind
{
    /// <summary>Every earlier position (causal).</summary>
    Full,
    /// <summary>Only the last <see cref="GemmaConfig.SlidingWindow"/> positions, including the current one.</summary>
    Sliding,
}

/// <summary>
/// The blueprint of a Gemma model, read from Hugging Face <c>config.json</c> or GGUF metadata.
/// Per-layer differences (sliding/global attention, RoPE base) are data (<see cref="LayerTypes"/>), not <c>layer % 2</c>.
/// </summary>
public sealed record GemmaConfig
{
    /// <summary>Architecture family.</summary>
    public required GemmaFamily Family { get; init; }
    /// <summary>Vocabulary size: rows of the embedding (and tied output head).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Residual stream width (d_model).</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Feed-forward inner width.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (grouped-query attention: NumHeads / NumKvHeads queries share one).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Per-head dimension (not necessarily HiddenSize / NumHeads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Queries are scaled by QueryPreAttnScalar^-0.5 (Gemma 1 uses HeadDim).</summary>
    public required double QueryPreAttnScalar { get; init; }
    /// <summary>Window of sliding layers; null when no layer slides.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Attention kind of every layer.</summary>
    public required AttentionKind[] LayerTypes { get; init; }
    /// <summary>Attention logit soft-cap (scores = cap·tanh(scores/cap)); null = none.</summary>
    public double? AttnLogitSoftcapping { get; init; }
    /// <summary>Final logit soft-cap; null = none.</summary>
    public double? FinalLogitSoftcapping { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary>RoPE base of full-attention layers.</summary>
    public required double RopeTheta { get; init; }
    /// <summary>RoPE base of sliding layers (equal to <see cref="RopeTheta"/> except in Gemma 3).</summary>
    public required double RopeLocalTheta { get; init; }
    /// <summary>Feed-forward activation name (<c>gelu_pytorch_tanh</c>).</summary>
    public required string HiddenActivation { get; init; }
    /// <summary>Longest context the model was trained for.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary>Beginning-of-sequence token id.</summary>
    public required int BosTokenId { get; init; }
    /// <summary>End-of-sequence token ids (config may list several).</summary>
    public required int[] EosTokenIds { get; init; }
    /// <summary>Padding token id, if any.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>True when the output head reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>Query projection width: NumHeads × HeadDim.</summary>
    public int QueryDim => NumHeads * HeadDim;
    /// <summary>Key/value projection width: NumKvHeads × HeadDim.</summary>
    public int KvDim => NumKvHeads * HeadDim;
    /// <summary>True when q/k get their own RMSNorm per head (Gemma 3).</summary>
    public bool HasQkNorm => Family == GemmaFamily.Gemma3;
    /// <summary>True when attention and MLP outputs are normalised before the residual add (Gemma 2 and 3).</summary>
    public bool HasPostNorms => Family != GemmaFamily.Gemma1;

    /// <summary>How many positions layer <paramref name="layer"/> can see (window for sliding layers, else unlimited).</summary>
    public int AttentionWindow(int layer) => LayerTypes[layer] == AttentionKind.Sliding ? SlidingWindow!.Value : int.MaxValue;

    /// <summary>RoPE base of layer <paramref name="layer"/>.</summary>
    public double RopeBase(int layer) => LayerTypes[layer] == AttentionKind.Sliding ? RopeLocalTheta : RopeTheta;
}
