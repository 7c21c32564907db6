using System.Text.Json;

namespace Gemma.Core.Config;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> (and the eos ids of <c>generation_config.json</c>) into a
/// <see cref="GemmaConfig"/>. Keys absent from the file take the family's defaults (<see cref="GemmaFamilyRules"/>);
/// an explicit <c>null</c> soft-cap means "no soft-cap". The result passes <see cref="GemmaConfig.Validated"/>.
/// </summary>
internal static class GemmaConfigReader
{
    /// <summary>Reads <c>config.json</c> (and <c>generation_config.json</c> if present) from a model folder.</summary>
    public static GemmaConfig ReadDirectory(string directory)
    {
        string configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) throw new GemmaException($"{directory}: no config.json in the model folder.");
        GemmaConfig config = Parse(ReadAllText(configPath), configPath);
        string generationPath = Path.Combine(directory, "generation_config.json");
        if (File.Exists(generationPath))
        {
            using JsonDocument doc = ParseDocument(ReadAllText(generationPath), generationPath);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("eos_token_id", out JsonElement eos))
            {
                int[] extra = ReadIdList(eos, generationPath, "eos_token_id");
                config = config with { EosTokenIds = config.EosTokenIds.Union(extra).ToArray() };
            }
        }
        return config;
    }

    /// <summary>Parses the text of a <c>config.json</c>; <paramref name="path"/> names it in errors.</summary>
    public static GemmaConfig Parse(string json, string path)
    {
        using JsonDocument doc = ParseDocument(json, path);
        try
        {
            return Parse(doc, path);
        }
        catch (InvalidOperationException e) // a string that cannot be read (an escaped lone surrogate) or a value of an unexpected kind
        {
            throw new GemmaException($"{path}: unreadable value ({e.Message}).", e);
        }
    }

    private static GemmaConfig Parse(JsonDocument doc, string path)
    {
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new GemmaException($"{path}: not a JSON object.");
        var r = new Reader(root, path);

        string modelType = r.String("model_type") ?? throw new GemmaException($"{path}: missing \"model_type\".");
        GemmaFamilyRules rules = GemmaFamilyRules.All.FirstOrDefault(f => f.HfModelType == modelType)
            ?? throw new GemmaException($"{path}: unsupported model_type '{modelType}' (supported: {string.Join(", ", GemmaFamilyRules.All.Select(f => f.HfModelType))}).");
        bool gemma1 = rules.Family == GemmaFamily.Gemma1;

        int layers = r.RequiredInt("num_hidden_layers", 1, 1024);
        int heads = r.RequiredInt("num_attention_heads", 1, 1024);
        int kvHeads = r.RequiredInt("num_key_value_heads", 1, 1024);
        int headDim = r.RequiredInt("head_dim", 2, 8192);
        int? window = rules.DefaultSlidingWindow is int w ? r.OptionalInt("sliding_window", 1, int.MaxValue, absent: w) : null;
        (double ropeTheta, double ropeLocal) = ReadRope(r, root, rules, path);

        string activation = r.String("hidden_activation") ?? (gemma1 ? r.String("hidden_act") : null) ?? rules.Activation;
        if (gemma1 && activation == "gelu") activation = rules.Activation; // the reference GemmaMLP overrides the exact "gelu" of old Gemma 1 configs
        if (activation is not ("gelu_pytorch_tanh" or "gelu_tanh" or "gelu_new")) // three names of the tanh approximation
            throw new GemmaException($"{path}: unsupported hidden_activation '{activation}' (the tanh approximation of GELU is supported).");

        return new GemmaConfig
        {
            Family = rules.Family,
            VocabSize = r.RequiredInt("vocab_size", 1, int.MaxValue),
            HiddenSize = r.RequiredInt("hidden_size", 1, 1 << 20),
            IntermediateSize = r.RequiredInt("intermediate_size", 1, 1 << 22),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            QueryPreAttnScalar = rules.QueryScale == QueryScaleRule.HeadDim ? headDim
                : r.OptionalDouble("query_pre_attn_scalar", absent: rules.DefaultQueryPreAttnScalar) ?? throw new GemmaException($"{path}: query_pre_attn_scalar is null."),
            SlidingWindow = window,
            LayerTypes = ReadLayerTypes(r, rules, layers, path),
            AttnLogitSoftcapping = r.OptionalDouble("attn_logit_softcapping", absent: rules.DefaultAttnSoftcap),
            FinalLogitSoftcapping = r.OptionalDouble("final_logit_softcapping", absent: rules.DefaultFinalSoftcap),
            RmsNormEps = r.OptionalDouble("rms_norm_eps", absent: rules.DefaultRmsNormEps) ?? rules.DefaultRmsNormEps,
            RopeTheta = ropeTheta,
            RopeLocalTheta = ropeLocal,
            MaxPositionEmbeddings = r.OptionalInt("max_position_embeddings", 1, int.MaxValue, absent: rules.DefaultMaxPositions) ?? rules.DefaultMaxPositions,
            BosTokenId = r.OptionalInt("bos_token_id", 0, int.MaxValue, absent: rules.DefaultBos) ?? rules.DefaultBos,
            EosTokenIds = root.TryGetProperty("eos_token_id", out JsonElement eos) ? ReadIdList(eos, path, "eos_token_id") : [rules.DefaultEos],
            PadTokenId = r.OptionalInt("pad_token_id", 0, int.MaxValue, absent: rules.DefaultPad),
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? true,
        }.Validated(path);
    }

    private static AttentionKind[] ReadLayerTypes(Reader r, GemmaFamilyRules rules, int layers, string path)
    {
        if (r.Root.TryGetProperty("layer_types", out JsonElement types) && types.ValueKind == JsonValueKind.Array)
        {
            if (types.GetArrayLength() != layers) throw new GemmaException($"{path}: layer_types has {types.GetArrayLength()} entries for {layers} layers.");
            return types.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString() : null).Select(t => t switch
            {
                "sliding_attention" => AttentionKind.Sliding,
                "full_attention" => AttentionKind.Full,
                _ => throw new GemmaException($"{path}: unknown layer type '{t}' in layer_types."),
            }).ToArray();
        }
        // The family's rule when layer_types is absent; Gemma 3 configs may name their own pattern.
        int? pattern = rules.Family == GemmaFamily.Gemma3
            ? r.OptionalInt("sliding_window_pattern", 1, 1024, absent: null) ?? r.OptionalInt("_sliding_window_pattern", 1, 1024, absent: null)
            : null;
        return rules.LayerTypes(layers, pattern);
    }

    private static (double Global, double Local) ReadRope(Reader r, JsonElement root, GemmaFamilyRules rules, string path)
    {
        double? top = r.OptionalDouble("rope_theta", absent: null);
        double local = r.OptionalDouble("rope_local_base_freq", absent: rules.DefaultRopeLocalTheta) ?? rules.DefaultRopeLocalTheta;
        if (root.TryGetProperty("rope_parameters", out JsonElement rp) && rp.ValueKind == JsonValueKind.Object)
        {
            if (rp.TryGetProperty("full_attention", out JsonElement full) && full.ValueKind == JsonValueKind.Object)
            {
                double g = RopeThetaOf(full, path, "rope_parameters.full_attention");
                double l = rp.TryGetProperty("sliding_attention", out JsonElement sl) && sl.ValueKind == JsonValueKind.Object
                    ? RopeThetaOf(sl, path, "rope_parameters.sliding_attention") : local;
                return (g, l);
            }
            double theta = RopeThetaOf(rp, path, "rope_parameters");
            return (theta, rules.LocalRopeBase ? local : theta);
        }
        if (root.TryGetProperty("rope_scaling", out JsonElement scaling) && scaling.ValueKind == JsonValueKind.Object)
            throw new GemmaException($"{path}: rope_scaling is not supported.");
        double t = top ?? rules.DefaultRopeTheta;
        return (t, rules.LocalRopeBase ? local : t);
    }

    private static double RopeThetaOf(JsonElement e, string path, string where)
    {
        if (e.TryGetProperty("rope_type", out JsonElement type) && type.ValueKind == JsonValueKind.String && type.GetString() != "default")
            throw new GemmaException($"{path}: {where}.rope_type '{type.GetString()}' is not supported (only 'default').");
        if (!e.TryGetProperty("rope_theta", out JsonElement theta) || theta.ValueKind != JsonValueKind.Number || !theta.TryGetDouble(out double value))
            throw new GemmaException($"{path}: {where} has no numeric rope_theta.");
        return value;
    }

    private static int[] ReadIdList(JsonElement e, string path, string key)
    {
        IEnumerable<JsonElement> items = e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : [e];
        return items.Where(i => i.ValueKind != JsonValueKind.Null).Select(i =>
            i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out int id) && id >= 0 ? id
                : throw new GemmaException($"{path}: {key} holds '{i.GetRawText()}', not a token id.")).ToArray();
    }

    private static string ReadAllText(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.Length > 16 << 20) throw new GemmaException($"{path}: implausibly large for a configuration file ({info.Length} bytes).");
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GemmaException($"{path}: cannot read ({e.Message}).", e);
        }
    }

    private static JsonDocument ParseDocument(string json, string path)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new GemmaException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    /// <summary>Typed, checked access to the top-level keys of a config object.</summary>
    private readonly record struct Reader(JsonElement Root, string Path)
    {
        public string? String(string key) =>
            Root.TryGetProperty(key, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

        public bool? Bool(string key) =>
            Root.TryGetProperty(key, out JsonElement e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : null;

        public int RequiredInt(string key, int min, int max) =>
            OptionalInt(key, min, max, absent: null) ?? throw new GemmaException($"{Path}: missing \"{key}\".");

        public int? OptionalInt(string key, int min, int max, int? absent)
        {
            if (!Root.TryGetProperty(key, out JsonElement e)) return absent;
            if (e.ValueKind == JsonValueKind.Null) return null;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < min || v > max)
                throw new GemmaException($"{Path}: \"{key}\" is {e.GetRawText()}, expected an integer in [{min}, {max}].");
            return (int)v;
        }

        public double? OptionalDouble(string key, double? absent)
        {
            if (!Root.TryGetProperty(key, out JsonElement e)) return absent;
            if (e.ValueKind == JsonValueKind.Null) return null;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
                throw new GemmaException($"{Path}: \"{key}\" is {e.GetRawText()}, expected a number.");
            return v;
        }
    }
}
