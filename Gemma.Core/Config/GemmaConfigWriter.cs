using System.Text.Json;

namespace Gemma.Core.Config;

/// <summary>Writes a <see cref="GemmaConfig"/> as a Hugging Face <c>config.json</c> that <see cref="GemmaConfigReader"/> (and transformers) read back.</summary>
internal static class GemmaConfigWriter
{
    /// <summary>The JSON text of <paramref name="c"/>.</summary>
    public static string ToJson(GemmaConfig c)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(c.Rules.HfArchitecture);
            w.WriteEndArray();
            w.WriteString("model_type", c.Rules.HfModelType);
            w.WriteNumber("vocab_size", c.VocabSize);
            w.WriteNumber("hidden_size", c.HiddenSize);
            w.WriteNumber("intermediate_size", c.IntermediateSize);
            w.WriteNumber("num_hidden_layers", c.NumLayers);
            w.WriteNumber("num_attention_heads", c.NumHeads);
            w.WriteNumber("num_key_value_heads", c.NumKvHeads);
            w.WriteNumber("head_dim", c.HeadDim);
            w.WriteNumber("query_pre_attn_scalar", c.QueryPreAttnScalar);
            if (c.SlidingWindow is int window) w.WriteNumber("sliding_window", window); else w.WriteNull("sliding_window");
            w.WriteStartArray("layer_types");
            foreach (AttentionKind k in c.LayerTypes) w.WriteStringValue(k == AttentionKind.Sliding ? "sliding_attention" : "full_attention");
            w.WriteEndArray();
            WriteNullable(w, "attn_logit_softcapping", c.AttnLogitSoftcapping);
            WriteNullable(w, "final_logit_softcapping", c.FinalLogitSoftcapping);
            w.WriteNumber("rms_norm_eps", c.RmsNormEps);
            w.WriteNumber("rope_theta", c.RopeTheta);
            if (c.Rules.LocalRopeBase) w.WriteNumber("rope_local_base_freq", c.RopeLocalTheta);
            w.WriteString("hidden_activation", c.Rules.Activation);
            w.WriteNumber("max_position_embeddings", c.MaxPositionEmbeddings);
            w.WriteNumber("bos_token_id", c.BosTokenId);
            w.WriteStartArray("eos_token_id");
            foreach (int id in c.EosTokenIds) w.WriteNumberValue(id);
            w.WriteEndArray();
            if (c.PadTokenId is int pad) w.WriteNumber("pad_token_id", pad);
            w.WriteBoolean("tie_word_embeddings", c.TieWordEmbeddings);
            w.WriteString("torch_dtype", "bfloat16");
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteNullable(Utf8JsonWriter w, string key, double? value)
    {
        if (value is double v) w.WriteNumber(key, v); else w.WriteNull(key);
    }
}
