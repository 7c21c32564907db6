using Gemma.Core.Config;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// Reads a <see cref="GemmaConfig"/> from GGUF metadata (<c>general.architecture</c> = gemma, gemma2 or gemma3 and
/// the <c>{arch}.*</c> keys). Absent keys take the family's defaults (<see cref="GemmaFamilyRules"/>, which follow
/// llama.cpp's loader); the result passes the same <see cref="GemmaConfig.Validated"/> as a <c>config.json</c>.
/// </summary>
/// <remarks>
/// GGUF has no key for <c>query_pre_attn_scalar</c>: the scalar is the one llama.cpp assumes
/// (<see cref="GemmaFamilyRules.GgufQueryPreAttnScalar"/>), so that a file means the same thing here and there.
/// (<see cref="GgufModelWriter"/> folds any other scalar into the query weights.)
/// </remarks>
internal static class GgufGemmaConfig
{
    /// <summary>Builds the config; <paramref name="vocabSize"/> is the embedding's row count.</summary>
    public static GemmaConfig Read(GgufFile file, int vocabSize)
    {
        GgufMetadata m = file.Metadata;
        string p = file.Path;
        string arch = m.TryGetString("general.architecture", out string? a) ? a : throw new GemmaException($"{p}: no general.architecture.");
        GemmaFamilyRules rules = GemmaFamilyRules.All.FirstOrDefault(f => f.GgufArchitecture == arch)
            ?? throw new GemmaException($"{p}: unsupported architecture '{arch}' (supported: {string.Join(", ", GemmaFamilyRules.All.Select(f => f.GgufArchitecture))}).");
        int Required(string key) => Positive(p, key, m.TryGetUInt32($"{arch}.{key}", out uint v) ? v : throw new GemmaException($"{p}: missing {arch}.{key}."));
        int? Optional(string key) => m.TryGetUInt32($"{arch}.{key}", out uint v) ? Positive(p, key, v) : null;
        double? Float(string key, double? absent) => m.TryGetDouble($"{arch}.{key}", out double d) ? d : absent;

        int hidden = Required("embedding_length");
        int layers = Required("block_count");
        int heads = Required("attention.head_count");
        int kvHeads = Optional("attention.head_count_kv") ?? heads;
        int headDim = Optional("attention.key_length") ?? hidden / heads;
        if (Optional("attention.value_length") is int vl && vl != headDim)
            throw new GemmaException($"{p}: attention.value_length {vl} differs from key_length {headDim}.");

        var eos = new List<int>();
        if (m.TryGetUInt32("tokenizer.ggml.eos_token_id", out uint eosId)) eos.Add((int)eosId);
        if (m.TryGetUInt32("tokenizer.ggml.eot_token_id", out uint eotId) && !eos.Contains((int)eotId)) eos.Add((int)eotId);
        if (eos.Count == 0) eos.Add(rules.DefaultEos);

        double ropeTheta = Float("rope.freq_base", rules.DefaultRopeTheta)!.Value;
        return new GemmaConfig
        {
            Family = rules.Family,
            VocabSize = vocabSize,
            HiddenSize = hidden,
            IntermediateSize = Required("feed_forward_length"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            QueryPreAttnScalar = rules.QueryScale == QueryScaleRule.HeadDim ? headDim : rules.GgufQueryPreAttnScalar(layers, hidden, heads, headDim),
            SlidingWindow = rules.DefaultSlidingWindow is int w ? Optional("attention.sliding_window") ?? w : null,
            LayerTypes = rules.LayerTypes(layers),
            AttnLogitSoftcapping = Float("attn_logit_softcapping", rules.DefaultAttnSoftcap),
            FinalLogitSoftcapping = Float("final_logit_softcapping", rules.DefaultFinalSoftcap),
            RmsNormEps = Float("attention.layer_norm_rms_epsilon", rules.DefaultRmsNormEps)!.Value,
            RopeTheta = ropeTheta,
            RopeLocalTheta = rules.LocalRopeBase ? Float("rope.freq_base_swa", rules.DefaultRopeLocalTheta)!.Value : ropeTheta,
            MaxPositionEmbeddings = Optional("context_length") ?? rules.DefaultMaxPositions,
            BosTokenId = m.TryGetUInt32("tokenizer.ggml.bos_token_id", out uint bos) ? (int)bos : rules.DefaultBos,
            EosTokenIds = eos.ToArray(),
            PadTokenId = m.TryGetUInt32("tokenizer.ggml.padding_token_id", out uint pad) ? (int)pad : null,
            TieWordEmbeddings = !file.TryGetTensor("output.weight", out _),
        }.Validated(p);
    }

    private static int Positive(string path, string key, uint value) =>
        value is >= 1 and <= int.MaxValue ? (int)value : throw new GemmaException($"{path}: {key} is {value}, expected a positive integer.");
}
