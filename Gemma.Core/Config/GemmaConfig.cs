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
    public bool HasQkNorm => Rules.QkNorm;
    /// <summary>True when attention and MLP outputs are normalised before the residual add (Gemma 2 and 3).</summary>
    public bool HasPostNorms => Rules.PostNorms;

    /// <summary>The family's rules and defaults.</summary>
    internal GemmaFamilyRules Rules => GemmaFamilyRules.Of(Family);

    /// <summary>How many positions layer <paramref name="layer"/> can see (window for sliding layers, else unlimited).</summary>
    public int AttentionWindow(int layer) => LayerTypes[layer] == AttentionKind.Sliding ? SlidingWindow!.Value : int.MaxValue;

    /// <summary>
    /// The one validation of a config, whichever file it came from (<paramref name="where"/> names that file in the
    /// message): shapes that the forward pass relies on, positive numerics, special ids inside the vocabulary.
    /// </summary>
    /// <exception cref="GemmaException">The first problem found.</exception>
    internal GemmaConfig Validated(string where)
    {
        void Require(bool ok, string problem) { if (!ok) throw new GemmaException($"{where}: {problem}."); }
        Require(NumHeads % NumKvHeads == 0, $"{NumHeads} attention heads is not a multiple of {NumKvHeads} key/value heads");
        Require(HeadDim % 2 == 0, $"head dimension {HeadDim} must be even for rotary embeddings");
        Require(LayerTypes.Length == NumLayers, $"{LayerTypes.Length} layer types for {NumLayers} layers");
        Require(SlidingWindow is not null || !LayerTypes.Contains(AttentionKind.Sliding), "there are sliding layers but no sliding window");
        Require(SlidingWindow is null or > 0, $"sliding window {SlidingWindow} must be positive");
        Require(AttnLogitSoftcapping is null or > 0 && FinalLogitSoftcapping is null or > 0, "soft-caps must be positive");
        Require(RmsNormEps is >= 0 and <= 1, $"rms_norm_eps {RmsNormEps} must be in [0, 1]");
        Require(RopeTheta > 0 && RopeLocalTheta > 0, "rope theta must be positive");
        Require(QueryPreAttnScalar > 0 && double.IsFinite(QueryPreAttnScalar), $"query_pre_attn_scalar {QueryPreAttnScalar} must be positive");
        Require(Rules.LocalRopeBase || RopeLocalTheta == RopeTheta, $"a {Family} model has one RoPE base, got {RopeTheta} and {RopeLocalTheta}");
        Require(Rules.QueryScale != QueryScaleRule.HeadDim || QueryPreAttnScalar == HeadDim, $"a {Family} model scales queries by head_dim {HeadDim}, not {QueryPreAttnScalar}");
        Require(MaxPositionEmbeddings > 0, "max_position_embeddings must be positive");
        foreach (int id in EosTokenIds.Append(BosTokenId))
            Require(id >= 0 && id < VocabSize, $"special token id {id} is outside the vocabulary ({VocabSize})");
        return this;
    }
}
