using Gemma.Core.Config;

namespace Gemma.Core.Formats;

/// <summary>The parts of a decoder the loader looks for, independent of a file format's naming.</summary>
internal enum TensorRole
{
    /// <summary>Token embedding.</summary>
    Embedding,
    /// <summary>Final norm.</summary>
    FinalNorm,
    /// <summary>Untied output head.</summary>
    OutputHead,
    /// <summary>Norm before attention.</summary>
    InputNorm,
    /// <summary>Norm after attention (Gemma 2/3).</summary>
    PostAttentionNorm,
    /// <summary>Norm before the MLP.</summary>
    PreFeedforwardNorm,
    /// <summary>Norm after the MLP (Gemma 2/3).</summary>
    PostFeedforwardNorm,
    /// <summary>Query projection.</summary>
    QProj,
    /// <summary>Key projection.</summary>
    KProj,
    /// <summary>Value projection.</summary>
    VProj,
    /// <summary>Attention output projection.</summary>
    OProj,
    /// <summary>Per-head query norm (Gemma 3).</summary>
    QNorm,
    /// <summary>Per-head key norm (Gemma 3).</summary>
    KNorm,
    /// <summary>MLP gate projection.</summary>
    GateProj,
    /// <summary>MLP up projection.</summary>
    UpProj,
    /// <summary>MLP down projection.</summary>
    DownProj,
}

/// <summary>Maps tensor roles to the names a file format stores them under, and says how norms are stored.</summary>
internal abstract class TensorNaming
{
    /// <summary>Stored name of <paramref name="role"/> (layer index ignored for model-level roles).</summary>
    public abstract string Name(TensorRole role, int layer, GemmaConfig config);

    /// <summary>True when stored norm weights already include Gemma's +1 (GGUF); false for Hugging Face checkpoints.</summary>
    public abstract bool NormsIncludeOne { get; }

    /// <summary>Hugging Face <c>Gemma*ForCausalLM</c> names (<c>model.layers.3.self_attn.q_proj.weight</c>).</summary>
    public static TensorNaming HuggingFace { get; } = new HuggingFaceNaming();

    /// <summary>llama.cpp GGUF names (<c>blk.3.attn_q.weight</c>); norm weights include the +1.</summary>
    public static TensorNaming Gguf { get; } = new GgufNaming();

    private sealed class GgufNaming : TensorNaming
    {
        public override bool NormsIncludeOne => true;

        public override string Name(TensorRole role, int layer, GemmaConfig config) => role switch
        {
            TensorRole.Embedding => "token_embd.weight",
            TensorRole.FinalNorm => "output_norm.weight",
            TensorRole.OutputHead => "output.weight",
            TensorRole.InputNorm => $"blk.{layer}.attn_norm.weight",
            TensorRole.PostAttentionNorm => $"blk.{layer}.post_attention_norm.weight",
            TensorRole.PreFeedforwardNorm => $"blk.{layer}.ffn_norm.weight",
            TensorRole.PostFeedforwardNorm => $"blk.{layer}.post_ffw_norm.weight",
            TensorRole.QProj => $"blk.{layer}.attn_q.weight",
            TensorRole.KProj => $"blk.{layer}.attn_k.weight",
            TensorRole.VProj => $"blk.{layer}.attn_v.weight",
            TensorRole.OProj => $"blk.{layer}.attn_output.weight",
            TensorRole.QNorm => $"blk.{layer}.attn_q_norm.weight",
            TensorRole.KNorm => $"blk.{layer}.attn_k_norm.weight",
            TensorRole.GateProj => $"blk.{layer}.ffn_gate.weight",
            TensorRole.UpProj => $"blk.{layer}.ffn_up.weight",
            TensorRole.DownProj => $"blk.{layer}.ffn_down.weight",
            _ => throw new ArgumentOutOfRangeException(nameof(role)),
        };
    }

    private sealed class HuggingFaceNaming : TensorNaming
    {
        public override bool NormsIncludeOne => false;

        public override string Name(TensorRole role, int layer, GemmaConfig config) => role switch
        {
            TensorRole.Embedding => "model.embed_tokens.weight",
            TensorRole.FinalNorm => "model.norm.weight",
            TensorRole.OutputHead => "lm_head.weight",
            TensorRole.InputNorm => $"model.layers.{layer}.input_layernorm.weight",
            TensorRole.PostAttentionNorm => $"model.layers.{layer}.post_attention_layernorm.weight",
            // Gemma 1 has a single norm between attention and MLP and calls it post_attention_layernorm.
            TensorRole.PreFeedforwardNorm => config.HasPostNorms
                ? $"model.layers.{layer}.pre_feedforward_layernorm.weight"
                : $"model.layers.{layer}.post_attention_layernorm.weight",
            TensorRole.PostFeedforwardNorm => $"model.layers.{layer}.post_feedforward_layernorm.weight",
            TensorRole.QProj => $"model.layers.{layer}.self_attn.q_proj.weight",
            TensorRole.KProj => $"model.layers.{layer}.self_attn.k_proj.weight",
            TensorRole.VProj => $"model.layers.{layer}.self_attn.v_proj.weight",
            TensorRole.OProj => $"model.layers.{layer}.self_attn.o_proj.weight",
            TensorRole.QNorm => $"model.layers.{layer}.self_attn.q_norm.weight",
            TensorRole.KNorm => $"model.layers.{layer}.self_attn.k_norm.weight",
            TensorRole.GateProj => $"model.layers.{layer}.mlp.gate_proj.weight",
            TensorRole.UpProj => $"model.layers.{layer}.mlp.up_proj.weight",
            TensorRole.DownProj => $"model.layers.{layer}.mlp.down_proj.weight",
            _ => throw new ArgumentOutOfRangeException(nameof(role)),
        };
    }
}
