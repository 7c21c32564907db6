using Gemma.Core.Tokenization;

namespace Gemma.Core.Formats.Gguf;

/// <summary>The <c>tokenizer.ggml.*</c> keys of a GGUF file ↔ <see cref="GemmaTokenizer"/> (SentencePiece "llama" model).</summary>
internal static class GgufVocabulary
{
    /// <summary>Builds the tokenizer stored in a GGUF file.</summary>
    public static GemmaTokenizer Read(GgufFile file)
    {
        GgufMetadata m = file.Metadata;
        string p = file.Path;
        if (!m.TryGetString("tokenizer.ggml.model", out string? model))
            throw new GemmaException($"{p}: no tokenizer.ggml.model (the file carries no vocabulary).");
        if (model != "llama")
            throw new GemmaException($"{p}: tokenizer.ggml.model is '{model}'; Gemma uses the SentencePiece ('llama') vocabulary.");
        string[] tokens = m.GetStringArray("tokenizer.ggml.tokens");
        float[] scores = m.TryGetValue("tokenizer.ggml.scores", out _) ? m.GetSingleArray("tokenizer.ggml.scores") : new float[tokens.Length];
        int[] types = m.TryGetValue("tokenizer.ggml.token_type", out _) ? m.GetInt32Array("tokenizer.ggml.token_type") : Enumerable.Repeat(1, tokens.Length).ToArray();
        int Id(string key, int absent) => m.TryGetUInt32(key, out uint v) ? (v <= int.MaxValue ? (int)v : throw new GemmaException($"{p}: {key} {v} is out of range.")) : absent;
        if (m.TryGetBoolean("tokenizer.ggml.add_space_prefix", out bool spacePrefix) && spacePrefix)
            throw new GemmaException($"{p}: tokenizer.ggml.add_space_prefix is true; Gemma vocabularies add no dummy prefix.");
        return GemmaTokenizer.FromVocabulary(tokens, scores, types, Id("tokenizer.ggml.bos_token_id", 2), Id("tokenizer.ggml.eos_token_id", 1),
            Id("tokenizer.ggml.unknown_token_id", -1), Id("tokenizer.ggml.padding_token_id", -1), p);
    }

    /// <summary>Adds the vocabulary keys llama.cpp's converter writes for a Gemma SentencePiece tokenizer.</summary>
    public static void Write(GgufWriter writer, GemmaTokenizer tokenizer, string? chatTemplate)
    {
        int n = tokenizer.VocabularySize;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        for (int id = 0; id < n; id++)
        {
            tokens[id] = tokenizer.GetPiece(id);
            scores[id] = tokenizer.GetScore(id);
            types[id] = (int)tokenizer.GetTokenType(id);
        }
        writer.AddMetadata("tokenizer.ggml.model", GgufValue.FromString("llama"));
        writer.AddMetadata("tokenizer.ggml.pre", GgufValue.FromString("default"));
        writer.AddMetadata("tokenizer.ggml.tokens", GgufValue.FromArray(tokens));
        writer.AddMetadata("tokenizer.ggml.scores", GgufValue.FromArray(scores));
        writer.AddMetadata("tokenizer.ggml.token_type", GgufValue.FromArray(types));
        writer.AddMetadata("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32((uint)tokenizer.BosId));
        writer.AddMetadata("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32((uint)tokenizer.EosId));
        if (tokenizer.UnknownId >= 0) writer.AddMetadata("tokenizer.ggml.unknown_token_id", GgufValue.FromUInt32((uint)tokenizer.UnknownId));
        if (tokenizer.PadId >= 0) writer.AddMetadata("tokenizer.ggml.padding_token_id", GgufValue.FromUInt32((uint)tokenizer.PadId));
        if (tokenizer.EndOfTurnId >= 0) writer.AddMetadata("tokenizer.ggml.eot_token_id", GgufValue.FromUInt32((uint)tokenizer.EndOfTurnId));
        writer.AddMetadata("tokenizer.ggml.add_bos_token", GgufValue.FromBoolean(true));
        writer.AddMetadata("tokenizer.ggml.add_eos_token", GgufValue.FromBoolean(false));
        writer.AddMetadata("tokenizer.ggml.add_space_prefix", GgufValue.FromBoolean(false));
        if (chatTemplate != null) writer.AddMetadata("tokenizer.chat_template", GgufValue.FromString(chatTemplate));
    }
}
