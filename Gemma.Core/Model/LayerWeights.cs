using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>
/// The weights of one decoder layer, named after the checkpoint's tensors (<c>self_attn.q_proj</c> → <see cref="QProj"/>).
/// Matrices are <c>[out_features, in_features]</c> views into the mapped file. Norm scales are float32 arrays that
/// already hold <c>1 + w</c> (Gemma's RMSNorm multiplies by one plus the stored weight).
/// </summary>
internal sealed class LayerWeights
{
    /// <summary><c>[heads·head_dim, hidden]</c></summary>
    public required WeightMatrix QProj { get; init; }
    /// <summary><c>[kv_heads·head_dim, hidden]</c></summary>
    public required WeightMatrix KProj { get; init; }
    /// <summary><c>[kv_heads·head_dim, hidden]</c></summary>
    public required WeightMatrix VProj { get; init; }
    /// <summary><c>[hidden, heads·head_dim]</c></summary>
    public required WeightMatrix OProj { get; init; }
    /// <summary><c>[ffn, hidden]</c></summary>
    public required WeightMatrix GateProj { get; init; }
    /// <summary><c>[ffn, hidden]</c></summary>
    public required WeightMatrix UpProj { get; init; }
    /// <summary><c>[hidden, ffn]</c></summary>
    public required WeightMatrix DownProj { get; init; }
    /// <summary><c>[hidden]</c>, before attention.</summary>
    public required float[] InputNorm { get; init; }
    /// <summary><c>[hidden]</c>, on the attention output before the residual add (Gemma 2/3).</summary>
    public float[]? PostAttentionNorm { get; init; }
    /// <summary><c>[hidden]</c>, before the MLP (Gemma 1 stores it as <c>post_attention_layernorm</c>).</summary>
    public required float[] PreFeedforwardNorm { get; init; }
    /// <summary><c>[hidden]</c>, on the MLP output before the residual add (Gemma 2/3).</summary>
    public float[]? PostFeedforwardNorm { get; init; }
    /// <summary><c>[head_dim]</c>, per-head query norm (Gemma 3).</summary>
    public float[]? QNorm { get; init; }
    /// <summary><c>[head_dim]</c>, per-head key norm (Gemma 3).</summary>
    public float[]? KNorm { get; init; }
}
