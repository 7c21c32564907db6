namespace Gemma.Core.Config;

/// <summary>Known model shapes as data (for synthetic benchmark models and tests), after gemma.cpp's config factories.</summary>
internal static class GemmaPresets
{
    /// <summary>Gemma 2 2B (gemma-2-2b, gemma-2-2b-it, gemma-2-2b-jpn-it): 26 layers alternating sliding (4096) and global.</summary>
    public static GemmaConfig Gemma2_2B { get; } = new()
    {
        Family = GemmaFamily.Gemma2,
        VocabSize = 256000,
        HiddenSize = 2304,
        IntermediateSize = 9216,
        NumLayers = 26,
        NumHeads = 8,
        NumKvHeads = 4,
        HeadDim = 256,
        QueryPreAttnScalar = 256,
        SlidingWindow = 4096,
        LayerTypes = Enumerable.Range(0, 26).Select(i => i % 2 == 0 ? AttentionKind.Sliding : AttentionKind.Full).ToArray(),
        AttnLogitSoftcapping = 50.0,
        FinalLogitSoftcapping = 30.0,
        RmsNormEps = 1e-6,
        RopeTheta = 10000.0,
        RopeLocalTheta = 10000.0,
        HiddenActivation = "gelu_pytorch_tanh",
        MaxPositionEmbeddings = 8192,
        BosTokenId = 2,
        EosTokenIds = [1, 107],
        PadTokenId = 0,
    };

    /// <summary>Looks a preset up by name (<c>gemma2-2b</c>).</summary>
    public static GemmaConfig ByName(string name) => name switch
    {
        "gemma2-2b" => Gemma2_2B,
        _ => throw new GemmaException($"Unknown model preset '{name}' (known: gemma2-2b)."),
    };
}
