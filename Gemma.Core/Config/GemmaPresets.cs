namespace Gemma.Core.Config;

/// <summary>
/// Known model shapes as data (for synthetic benchmark models and tests), after gemma.cpp's config factories: the
/// shape is given here, everything else is the family's default (<see cref="GemmaFamilyRules"/>).
/// </summary>
internal static class GemmaPresets
{
    /// <summary>Gemma 2 2B (gemma-2-2b, gemma-2-2b-it, gemma-2-2b-jpn-it): 26 layers alternating sliding (4096) and global.</summary>
    public static GemmaConfig Gemma2_2B { get; } = FromRules(GemmaFamilyRules.Gemma2, vocab: 256000, hidden: 2304,
        intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256) with { EosTokenIds = [1, 107] }; // + <end_of_turn>

    /// <summary>Looks a preset up by name (<c>gemma2-2b</c>).</summary>
    public static GemmaConfig ByName(string name) => name switch
    {
        "gemma2-2b" => Gemma2_2B,
        _ => throw new GemmaException($"Unknown model preset '{name}' (known: gemma2-2b)."),
    };

    /// <summary>A config of the given shape with every other value the family's default.</summary>
    public static GemmaConfig FromRules(GemmaFamilyRules rules, int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim) => new GemmaConfig
    {
        Family = rules.Family,
        VocabSize = vocab,
        HiddenSize = hidden,
        IntermediateSize = intermediate,
        NumLayers = layers,
        NumHeads = heads,
        NumKvHeads = kvHeads,
        HeadDim = headDim,
        QueryPreAttnScalar = rules.QueryScale == QueryScaleRule.HeadDim ? headDim : rules.DefaultQueryPreAttnScalar,
        SlidingWindow = rules.DefaultSlidingWindow,
        LayerTypes = rules.LayerTypes(layers),
        AttnLogitSoftcapping = rules.DefaultAttnSoftcap,
        FinalLogitSoftcapping = rules.DefaultFinalSoftcap,
        RmsNormEps = rules.DefaultRmsNormEps,
        RopeTheta = rules.DefaultRopeTheta,
        RopeLocalTheta = rules.LocalRopeBase ? rules.DefaultRopeLocalTheta : rules.DefaultRopeTheta,
        MaxPositionEmbeddings = rules.DefaultMaxPositions,
        BosTokenId = rules.DefaultBos,
        EosTokenIds = [rules.DefaultEos],
        PadTokenId = rules.DefaultPad,
    }.Validated($"preset {rules.Family}");
}
