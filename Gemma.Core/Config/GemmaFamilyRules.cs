namespace Gemma.Core.Config;

/// <summary>How queries are scaled before <c>q·k</c>.</summary>
internal enum QueryScaleRule
{
    /// <summary>By <c>head_dim^-½</c>; the config has no key for it (Gemma 1).</summary>
    HeadDim,
    /// <summary>By <c>query_pre_attn_scalar^-½</c>, a config key (Gemma 2 and 3; 27B uses hidden/heads, not head_dim).</summary>
    QueryPreAttnScalar,
}

/// <summary>
/// The rules and defaults of one Gemma generation, as data — gemma.cpp's <c>ConfigBaseGemmaV2</c> idea: the features
/// the forward pass switches on, the names each file format uses, and the value a reader takes when a key is absent.
/// <see cref="GemmaConfigReader"/> (Hugging Face <c>config.json</c>), <c>GgufGemmaConfig</c>
/// (GGUF metadata), the writers and <see cref="GemmaPresets"/> read this table; nothing else knows a family's defaults.
/// Defaults are those of the reference configuration classes (transformers' <c>GemmaConfig</c>, <c>Gemma2Config</c>,
/// <c>Gemma3TextConfig</c>) and, for GGUF, of llama.cpp's loader.
/// </summary>
internal sealed record GemmaFamilyRules
{
    /// <summary>The family.</summary>
    public required GemmaFamily Family { get; init; }
    /// <summary><c>model_type</c> in <c>config.json</c>.</summary>
    public required string HfModelType { get; init; }
    /// <summary><c>architectures[0]</c> in <c>config.json</c>.</summary>
    public required string HfArchitecture { get; init; }
    /// <summary><c>general.architecture</c> in GGUF (also the prefix of its hyper-parameter keys).</summary>
    public required string GgufArchitecture { get; init; }

    // ---- Features of the forward pass ----
    /// <summary>Attention and MLP outputs are RMS-normalised before the residual add.</summary>
    public required bool PostNorms { get; init; }
    /// <summary>Queries and keys get a per-head RMSNorm before RoPE.</summary>
    public required bool QkNorm { get; init; }
    /// <summary>Where the query scale comes from.</summary>
    public required QueryScaleRule QueryScale { get; init; }
    /// <summary>
    /// Local/global layout when the file has no per-layer list: every <c>SlidingPattern</c>-th layer (counting from 1)
    /// is global and the others slide; 0 = every layer global.
    /// </summary>
    public required int SlidingPattern { get; init; }
    /// <summary>Sliding layers have their own RoPE base (<see cref="GemmaConfig.RopeLocalTheta"/>).</summary>
    public required bool LocalRopeBase { get; init; }
    /// <summary>
    /// The feed-forward activation, the only one the engine computes: GELU with the tanh approximation (HF
    /// <c>gelu_pytorch_tanh</c>; Gemma 1 configs that say exact <c>gelu</c> are overridden to it by the reference
    /// <c>GemmaMLP</c> too). Other names are rejected by the readers.
    /// </summary>
    public string Activation => "gelu_pytorch_tanh";

    // ---- Defaults for absent keys ----
    /// <summary>Sliding window; null when the family has no sliding layers.</summary>
    public int? DefaultSlidingWindow { get; init; }
    /// <summary><c>query_pre_attn_scalar</c> (<see cref="QueryScaleRule.QueryPreAttnScalar"/> families).</summary>
    public double DefaultQueryPreAttnScalar { get; init; } = 256;
    /// <summary>Attention logit soft-cap; null = none.</summary>
    public double? DefaultAttnSoftcap { get; init; }
    /// <summary>Final logit soft-cap; null = none.</summary>
    public double? DefaultFinalSoftcap { get; init; }
    /// <summary>RoPE base of global layers.</summary>
    public required double DefaultRopeTheta { get; init; }
    /// <summary>RoPE base of sliding layers when <see cref="LocalRopeBase"/>.</summary>
    public double DefaultRopeLocalTheta { get; init; } = 10_000;
    /// <summary><c>max_position_embeddings</c> / <c>context_length</c>.</summary>
    public required int DefaultMaxPositions { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public double DefaultRmsNormEps { get; init; } = 1e-6;
    /// <summary>BOS id (the Gemma SentencePiece vocabulary: <c>&lt;bos&gt;</c> = 2).</summary>
    public int DefaultBos { get; init; } = 2;
    /// <summary>EOS id (<c>&lt;eos&gt;</c> = 1).</summary>
    public int DefaultEos { get; init; } = 1;
    /// <summary>Padding id (<c>&lt;pad&gt;</c> = 0).</summary>
    public int DefaultPad { get; init; } = 0;

    /// <summary>
    /// GGUF has no <c>query_pre_attn_scalar</c> key. llama.cpp scales queries by <c>(hidden/heads)^-½</c> for the
    /// 27B size, which it recognises by this layer count, and by <c>head_dim^-½</c> otherwise; null = always head_dim.
    /// </summary>
    public int? GgufWideQueryScaleLayers { get; init; }

    /// <summary>The query scalar llama.cpp assumes for a GGUF file of this family and shape.</summary>
    public double GgufQueryPreAttnScalar(int layers, int hidden, int heads, int headDim) =>
        layers == GgufWideQueryScaleLayers ? (double)hidden / heads : headDim;

    /// <summary>The default attention kind of every layer (<see cref="SlidingPattern"/>).</summary>
    public AttentionKind[] LayerTypes(int layers, int? pattern = null)
    {
        int p = pattern ?? SlidingPattern;
        return Enumerable.Range(0, layers).Select(i => p > 0 && (i + 1) % p != 0 ? AttentionKind.Sliding : AttentionKind.Full).ToArray();
    }

    /// <summary>Gemma 1: no post-norms, no soft-caps, global attention only, queries scaled by head_dim.</summary>
    public static GemmaFamilyRules Gemma1 { get; } = new()
    {
        Family = GemmaFamily.Gemma1, HfModelType = "gemma", HfArchitecture = "GemmaForCausalLM", GgufArchitecture = "gemma",
        PostNorms = false, QkNorm = false, QueryScale = QueryScaleRule.HeadDim, SlidingPattern = 0, LocalRopeBase = false,
        DefaultRopeTheta = 10_000, DefaultMaxPositions = 8192,
    };

    /// <summary>Gemma 2: post-norms, soft-caps 50/30, every other layer slides over 4096 positions.</summary>
    public static GemmaFamilyRules Gemma2 { get; } = new()
    {
        Family = GemmaFamily.Gemma2, HfModelType = "gemma2", HfArchitecture = "Gemma2ForCausalLM", GgufArchitecture = "gemma2",
        PostNorms = true, QkNorm = false, QueryScale = QueryScaleRule.QueryPreAttnScalar, SlidingPattern = 2, LocalRopeBase = false,
        DefaultSlidingWindow = 4096, DefaultAttnSoftcap = 50.0, DefaultFinalSoftcap = 30.0,
        DefaultRopeTheta = 10_000, DefaultMaxPositions = 8192, GgufWideQueryScaleLayers = 46,
    };

    /// <summary>Gemma 3 text: Gemma 2 plus QK-norm, no soft-caps, 5 sliding layers per global one, RoPE 1M/10k.</summary>
    public static GemmaFamilyRules Gemma3 { get; } = new()
    {
        Family = GemmaFamily.Gemma3, HfModelType = "gemma3_text", HfArchitecture = "Gemma3ForCausalLM", GgufArchitecture = "gemma3",
        PostNorms = true, QkNorm = true, QueryScale = QueryScaleRule.QueryPreAttnScalar, SlidingPattern = 6, LocalRopeBase = true,
        DefaultSlidingWindow = 4096, DefaultRopeTheta = 1_000_000, DefaultRopeLocalTheta = 10_000,
        DefaultMaxPositions = 131_072, GgufWideQueryScaleLayers = 62,
    };

    /// <summary>Every family, oldest first.</summary>
    public static IReadOnlyList<GemmaFamilyRules> All { get; } = [Gemma1, Gemma2, Gemma3];

    /// <summary>The rules of <paramref name="family"/>.</summary>
    public static GemmaFamilyRules Of(GemmaFamily family) => All.First(r => r.Family == family);
}
