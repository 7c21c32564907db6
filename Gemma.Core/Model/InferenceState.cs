using System.Runtime.CompilerServices;
using Gemma.Core.Config;

namespace Gemma.Core.Model;

/// <summary>
/// Activation buffers for one forward pass over a chunk of up to <see cref="MaxChunk"/> tokens, allocated once.
/// Row-major, one row per token of the chunk.
/// </summary>
internal sealed class InferenceState
{
    /// <summary>Allocates buffers for chunks of up to <paramref name="maxChunk"/> tokens.</summary>
    public InferenceState(GemmaConfig c, int maxChunk)
    {
        MaxChunk = maxChunk;
        int h = c.HiddenSize;
        X = new float[maxChunk * h];
        Normed = new float[maxChunk * h];
        Delta = new float[maxChunk * h];
        Q = new float[maxChunk * c.QueryDim];
        K = new float[maxChunk * c.KvDim];
        V = new float[maxChunk * c.KvDim];
        AttentionOut = new float[maxChunk * c.QueryDim];
        Gate = new float[maxChunk * c.IntermediateSize];
        Up = new float[maxChunk * c.IntermediateSize];
        Logits = new float[c.VocabSize];
        RopeCosGlobal = new float[maxChunk * c.HeadDim / 2];
        RopeSinGlobal = new float[maxChunk * c.HeadDim / 2];
        RopeCosLocal = new float[maxChunk * c.HeadDim / 2];
        RopeSinLocal = new float[maxChunk * c.HeadDim / 2];
        InvFreqGlobal = new float[c.HeadDim / 2];
        InvFreqLocal = new float[c.HeadDim / 2];
        Kernels.Rope.InverseFrequencies(c.HeadDim, c.RopeTheta, InvFreqGlobal);
        Kernels.Rope.InverseFrequencies(c.HeadDim, c.RopeLocalTheta, InvFreqLocal);
    }

    /// <summary>Most tokens per forward call.</summary>
    public int MaxChunk { get; }

    /// <summary>Times the passes over this state when set (<c>gemma bench --profile</c>); null, the default, reads no clock.</summary>
    public StepProfile? Profile { get; set; }

    /// <summary>Ends a <see cref="Phase"/> of the pass in the <see cref="Profile"/>, if there is one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Lap(Phase phase) => Profile?.Lap(phase);
    /// <summary><c>[chunk, hidden]</c> residual stream.</summary>
    public float[] X { get; }
    /// <summary><c>[chunk, hidden]</c> normalised input of a sub-layer.</summary>
    public float[] Normed { get; }
    /// <summary><c>[chunk, hidden]</c> sub-layer output before the residual add.</summary>
    public float[] Delta { get; }
    /// <summary><c>[chunk, heads·head_dim]</c></summary>
    public float[] Q { get; }
    /// <summary><c>[chunk, kv_heads·head_dim]</c></summary>
    public float[] K { get; }
    /// <summary><c>[chunk, kv_heads·head_dim]</c></summary>
    public float[] V { get; }
    /// <summary><c>[chunk, heads·head_dim]</c> concatenated head outputs.</summary>
    public float[] AttentionOut { get; }
    /// <summary><c>[chunk, ffn]</c></summary>
    public float[] Gate { get; }
    /// <summary><c>[chunk, ffn]</c></summary>
    public float[] Up { get; }
    /// <summary><c>[vocab]</c> logits of the last token.</summary>
    public float[] Logits { get; }
    /// <summary><c>[chunk, head_dim/2]</c> RoPE cos of the chunk's positions, full-attention base.</summary>
    public float[] RopeCosGlobal { get; }
    /// <summary><c>[chunk, head_dim/2]</c> RoPE sin, full-attention base.</summary>
    public float[] RopeSinGlobal { get; }
    /// <summary><c>[chunk, head_dim/2]</c> RoPE cos, sliding-layer base.</summary>
    public float[] RopeCosLocal { get; }
    /// <summary><c>[chunk, head_dim/2]</c> RoPE sin, sliding-layer base.</summary>
    public float[] RopeSinLocal { get; }
    /// <summary><c>[head_dim/2]</c> inverse frequencies of full-attention layers.</summary>
    public float[] InvFreqGlobal { get; }
    /// <summary><c>[head_dim/2]</c> inverse frequencies of sliding layers.</summary>
    public float[] InvFreqLocal { get; }
}
