using Gemma.Core.Config;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// Reads a <see cref="GemmaConfig"/> from GGUF metadata (<c>general.architecture</c> = gemma, gemma2 or gemma3 and
/// the <c>{arch}.*</c> keys), with llama.cpp's defaults for keys a converter may omit.
/// </summary>
/// <remarks>
/// GGUF has no key for <c>query_pre_attn_scalar</c>. llama.cpp scales queries by 1/√head_dim, except for the
/// 46-layer Gemma 2 27B where it uses 1/√(hidden/heads); this reader follows the same rule so that a file means the
/// same thing here and there. (<see cref="GgufModelWriter"/> folds any other scalar into the query weights.)
/// </remarks>
internal static class GgufGemmaConfig
{
    /// <summary>Builds the config; <paramref name="vocabSize"/> is the embedding's row count.</summary>
    public static GemmaConfig Read(GgufFile file, int vocabSize)
    {
        GgufMetadata m = file.Metadata;
        string p = file.Path;
        string arch = m.TryGetString("general.architecture", out string? a) ? a : throw new GemmaException($"{p}: no general.architecture.");
        GemmaFamily family = arch switch
        {
            "gemma" => GemmaFamily.Gemma1,
            "gemma2" => GemmaFamily.Gemma2,
            "gemma3" => GemmaFamily.Gemma3,
            _ => throw new GemmaException($"{p}: unsupported architecture '{arch}' (supported: gemma, gemma2, gemma3)."),
        };
        int Required(string key) => Positive(p, key, m.TryGetUInt32($"{arch}.{key}", out uint v) ? v : throw new GemmaException($"{p}: missing {arch}.{key}."));
        int hidden = Required("embedding_length");
        int layers = Required("block_count");
        int heads = Required("attention.head_count");
        int kvHeads = m.TryGetUInt32($"{arch}.attention.head_count_kv", out uint kv) ? Positive(p, "attention.head_count_kv", kv) : heads;
        int headDim = m.TryGetUInt32($"{arch}.attention.key_length", out uint k) ? Positive(p, "attention.key_length", k) : hidden / heads;
        if (m.TryGetUInt32($"{arch}.attention.value_length", out uint vl) && vl != headDim)
            throw new GemmaException($"{p}: attention.value_length {vl} differs from key_length {headDim}.");
        if (heads % kvHeads != 0) throw new GemmaException($"{p}: head_count {heads} is not a multiple of head_count_kv {kvHeads}.");
        if (headDim % 2 != 0) throw new GemmaException($"{p}: key_length {headDim} must be even.");

        double? Float(string key, double? absent) => m.TryGetDouble($"{arch}.{key}", out double d) ? d : absent;
        int? window = family == GemmaFamily.Gemma1 ? null
            : m.TryGetUInt32($"{arch}.attention.sliding_window", out uint w) ? Positive(p, "attention.sliding_window", w) : 4096;
        int pattern = family switch { GemmaFamily.Gemma2 => 2, GemmaFamily.Gemma3 => 6, _ => 0 };
        var layerTypes = Enumerable.Range(0, layers)
            .Select(i => pattern > 0 && (i + 1) % pattern != 0 ? AttentionKind.Sliding : AttentionKind.Full).ToArray();
        double ropeTheta = Float("rope.freq_base", family == GemmaFamily.Gemma3 ? 1_000_000.0 : 10000.0)!.Value;
        bool is27B = layers == 46;

        var eos = new List<int>();
        if (m.TryGetUInt32("tokenizer.ggml.eos_token_id", out uint eosId)) eos.Add((int)eosId);
        if (m.TryGetUInt32("tokenizer.ggml.eot_token_id", out uint eotId) && !eos.Contains((int)eotId)) eos.Add((int)eotId);
        if (eos.Count == 0) eos.Add(1);

        var config = new GemmaConfig
        {
            Family = family,
            VocabSize = vocabSize,
            HiddenSize = hidden,
            IntermediateSize = Required("feed_forward_length"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            QueryPreAttnScalar = is27B ? (double)hidden / heads : headDim,
            SlidingWindow = window,
            LayerTypes = family == GemmaFamily.Gemma1 ? Enumerable.Repeat(AttentionKind.Full, layers).ToArray() : layerTypes,
            AttnLogitSoftcapping = family == GemmaFamily.Gemma2 ? Float("attn_logit_softcapping", 50.0) : Float("attn_logit_softcapping", null),
            FinalLogitSoftcapping = family == GemmaFamily.Gemma2 ? Float("final_logit_softcapping", 30.0) : Float("final_logit_softcapping", null),
            RmsNormEps = Float("attention.layer_norm_rms_epsilon", 1e-6)!.Value,
            RopeTheta = ropeTheta,
            RopeLocalTheta = family == GemmaFamily.Gemma3 ? Float("rope.freq_base_swa", 10000.0)!.Value : ropeTheta,
            HiddenActivation = "gelu_pytorch_tanh",
            MaxPositionEmbeddings = m.TryGetUInt32($"{arch}.context_length", out uint ctx) ? Positive(p, "context_length", ctx) : 8192,
            BosTokenId = m.TryGetUInt32("tokenizer.ggml.bos_token_id", out uint bos) ? (int)bos : 2,
            EosTokenIds = eos.ToArray(),
            PadTokenId = m.TryGetUInt32("tokenizer.ggml.padding_token_id", out uint pad) ? (int)pad : null,
            TieWordEmbeddings = !file.TryGetTensor("output.weight", out _),
        };
        foreach (int id in config.EosTokenIds.Append(config.BosTokenId))
            if (id >= vocabSize) throw new GemmaException($"{p}: special token id {id} is outside the vocabulary ({vocabSize}).");
        if (config.RmsNormEps is < 0 or > 1 || config.RopeTheta <= 0 || config.AttnLogitSoftcapping is <= 0 || config.FinalLogitSoftcapping is <= 0)
            throw new GemmaException($"{p}: rms epsilon, rope base and soft-caps must be positive.");
        return config;
    }

    private static int Positive(string path, string key, uint value) =>
        value is >= 1 and <= int.MaxValue ? (int)value : throw new GemmaException($"{path}: {key} is {value}, expected a positive integer.");
}
