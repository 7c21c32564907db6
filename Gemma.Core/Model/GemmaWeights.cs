using Gemma.Core.Formats;
using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>
/// All weights of a model: read-only views into memory-mapped files (no copies for F32/BF16/Q8_0), plus
/// the few small float32 arrays (norm scales) and any tensors that had to be converted at load (F16).
/// Disposing unmaps the files; kernels must not run after that.
/// </summary>
internal sealed class GemmaWeights : IDisposable
{
    private readonly ITensorSource _source;
    private readonly List<NativeBuffer> _owned;

    internal GemmaWeights(ITensorSource source, WeightMatrix embedding, WeightMatrix outputHead, float[] finalNorm,
        LayerWeights[] layers, List<NativeBuffer> owned)
    {
        _source = source; Embedding = embedding; OutputHead = outputHead; FinalNorm = finalNorm; Layers = layers; _owned = owned;
    }

    /// <summary><c>[vocab, hidden]</c> token embedding.</summary>
    public WeightMatrix Embedding { get; }
    /// <summary><c>[vocab, hidden]</c> output head (the embedding itself when tied).</summary>
    public WeightMatrix OutputHead { get; }
    /// <summary><c>[hidden]</c>, 1 + w of the final norm.</summary>
    public float[] FinalNorm { get; }
    /// <summary>Per-layer weights.</summary>
    public LayerWeights[] Layers { get; }
    /// <summary>Where the weights came from.</summary>
    public string Location => _source.Location;
    /// <summary>The underlying tensors (for inspection).</summary>
    public ITensorSource Source => _source;

    /// <inheritdoc />
    public void Dispose()
    {
        _source.Dispose();
        foreach (NativeBuffer b in _owned) b.Dispose();
        _owned.Clear();
    }
}
