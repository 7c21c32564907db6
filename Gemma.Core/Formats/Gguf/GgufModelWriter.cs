using System.Text.Json;
using Gemma.Core.Config;
using Gemma.Core.Tokenization;
using Gemma.Kernels;

namespace Gemma.Core.Formats.Gguf;

/// <summary>The weight encodings <see cref="GgufModelWriter"/> can produce.</summary>
internal enum GgufOutputType
{
    /// <summary>Matrices as ggml Q8_0 (blocks of 32 int8 with an fp16 scale).</summary>
    Q8_0,
    /// <summary>Matrices as bfloat16.</summary>
    BF16,
    /// <summary>Matrices as IEEE float16.</summary>
    F16,
    /// <summary>Everything float32.</summary>
    F32,
    /// <summary>
    /// llama.cpp's Q4_K_M mix: Q4_K matrices; Q6_K for the output head / tied embedding and for <c>attn_v</c> and
    /// <c>ffn_down</c> in the layers llama.cpp's <c>use_more_bits</c> picks (the first and last eighth, every third between).
    /// </summary>
    Q4_K_M,
    /// <summary>Q4_0 matrices (Q6_K output head / tied embedding, as llama.cpp).</summary>
    Q4_0,
    /// <summary>Q6_K matrices.</summary>
    Q6_K,
}

/// <summary>
/// Converts a Hugging Face Gemma folder into a GGUF file the way llama.cpp's <c>convert_hf_to_gguf.py</c> does:
/// llama.cpp tensor names, ggml (reversed) dimension order, norm weights stored as float32 with Gemma's +1 folded
/// in, the output head tied to <c>token_embd</c>, the SentencePiece vocabulary in <c>tokenizer.ggml.*</c>, and the
/// <c>{arch}.*</c> hyper-parameters. GGUF cannot express <c>query_pre_attn_scalar</c>: when it differs from the
/// scale llama.cpp assumes (1/√head_dim), the difference is folded exactly into <c>attn_q</c> (RoPE is linear), which
/// is then stored as float32 in bf16/f16 files so the fold costs no precision.
/// The file is written to a temporary name and renamed only when complete.
/// </summary>
internal static class GgufModelWriter
{
    /// <summary>Converts the model folder <paramref name="source"/> to <paramref name="target"/>.</summary>
    public static void Convert(string source, string target, GgufOutputType type, IProgress<(long Done, long Total)>? progress = null,
        CancellationToken cancellationToken = default)
    {
        using GemmaModel model = GemmaModel.Load(source, new GemmaModelOptions { Threads = 1 });
        GemmaConfig c = model.Config;
        GemmaTokenizer? tokenizer = model.Tokenizer; // a folder without one gives a weights-only file (tests, `gemma logits`)
        GemmaFamilyRules rules = c.Rules;
        string arch = rules.GgufArchitecture;
        if (!c.LayerTypes.SequenceEqual(rules.LayerTypes(c.NumLayers)))
            throw new GemmaException($"{source}: GGUF cannot express this model's layer_types (only the {c.Family} pattern).");
        var writer = new GgufWriter();
        writer.AddMetadata("general.architecture", GgufValue.FromString(arch));
        writer.AddMetadata("general.name", GgufValue.FromString(Path.GetFileName(Path.GetFullPath(source).TrimEnd(Path.DirectorySeparatorChar))));
        // llama_ftype ids: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q4_K_M 15, Q6_K 18, BF16 32.
        writer.AddMetadata("general.file_type", GgufValue.FromUInt32(type switch
        {
            GgufOutputType.F32 => 0u, GgufOutputType.F16 => 1u, GgufOutputType.Q8_0 => 7u, GgufOutputType.Q4_0 => 2u,
            GgufOutputType.Q4_K_M => 15u, GgufOutputType.Q6_K => 18u, _ => 32u,
        }));
        writer.AddMetadata("general.quantization_version", GgufValue.FromUInt32(2));
        AddHyperParameters(writer, arch, c);
        if (tokenizer != null) GgufVocabulary.Write(writer, tokenizer, ReadChatTemplate(source));

        var sources = model.Weights.Source.Tensors;
        TensorNaming hf = TensorNaming.HuggingFace, gguf = TensorNaming.Gguf;
        double llamaScalar = rules.GgufQueryPreAttnScalar(c.NumLayers, c.HiddenSize, c.NumHeads, c.HeadDim);
        float qFold = (float)Math.Sqrt(llamaScalar / c.QueryPreAttnScalar);
        long total = 0, done = 0;
        void Add(TensorRole role, int layer)
        {
            TensorView t = sources[hf.Name(role, layer, c)];
            bool norm = t.Shape.Length == 1;
            float scale = role == TensorRole.QProj ? qFold : 1f;
            // A folded attn_q is quantized after folding; in bf16/f16 files it stays float32 to keep the fold exact.
            bool halfFloat = type is GgufOutputType.BF16 or GgufOutputType.F16;
            GgmlType outType = norm || (scale != 1f && halfFloat) ? GgmlType.F32 : TensorType(type, role, layer, c, t.Shape[^1]);
            long rows = norm ? 1 : t.Shape[0], cols = t.Shape[^1];
            total += t.ByteLength;
            writer.AddTensor(gguf.Name(role, layer, c), outType, GgufTensorInfo.ToGgmlDimensions(t.Shape), (stream, ct) =>
            {
                WriteRows(t, rows, cols, outType, norm ? 1f : 0f, scale, stream, ct);
                done += t.ByteLength;
                progress?.Report((done, total));
            });
        }

        Add(TensorRole.Embedding, -1);
        if (!c.TieWordEmbeddings) Add(TensorRole.OutputHead, -1);
        for (int l = 0; l < c.NumLayers; l++)
        {
            Add(TensorRole.InputNorm, l);
            Add(TensorRole.QProj, l);
            Add(TensorRole.KProj, l);
            Add(TensorRole.VProj, l);
            Add(TensorRole.OProj, l);
            if (c.HasQkNorm) { Add(TensorRole.QNorm, l); Add(TensorRole.KNorm, l); }
            if (c.HasPostNorms) Add(TensorRole.PostAttentionNorm, l);
            Add(TensorRole.PreFeedforwardNorm, l);
            Add(TensorRole.GateProj, l);
            Add(TensorRole.UpProj, l);
            Add(TensorRole.DownProj, l);
            if (c.HasPostNorms) Add(TensorRole.PostFeedforwardNorm, l);
        }
        Add(TensorRole.FinalNorm, -1);
        writer.Write(target, cancellationToken);
    }

    /// <summary>
    /// The ggml type of a matrix, following llama.cpp's <c>llama_tensor_get_type</c> for the file types we write:
    /// the output head (or the embedding when tied, as in every Gemma) gets Q6_K in 4/6-bit files (Q8_0 if its rows are
    /// not a multiple of 256); in Q4_K_M, <c>attn_v</c> and <c>ffn_down</c> get Q6_K in the layers <c>use_more_bits</c>
    /// picks. Rows that do not fill the chosen type's blocks fall back to Q8_0 (llama.cpp would pick Q5_0/Q5_1 for the
    /// 4/5-bit K types; both load everywhere) or float32.
    /// </summary>
    internal static GgmlType TensorType(GgufOutputType type, TensorRole role, int layer, GemmaConfig c, long cols)
    {
        static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        bool head = role == TensorRole.OutputHead || (role == TensorRole.Embedding && c.TieWordEmbeddings);
        GgmlType chosen = type switch
        {
            GgufOutputType.Q8_0 => GgmlType.Q8_0,
            GgufOutputType.BF16 => GgmlType.BF16,
            GgufOutputType.F16 => GgmlType.F16,
            GgufOutputType.F32 => GgmlType.F32,
            _ when head => GgmlType.Q6_K,
            GgufOutputType.Q4_K_M when role is TensorRole.VProj or TensorRole.DownProj && UseMoreBits(layer, c.NumLayers) => GgmlType.Q6_K,
            GgufOutputType.Q4_K_M => GgmlType.Q4_K,
            GgufOutputType.Q4_0 => GgmlType.Q4_0,
            _ => GgmlType.Q6_K,
        };
        if (cols % ElementTypes.Of(chosen).BlockSize == 0) return chosen;
        return cols % Q8_0.BlockSize == 0 ? GgmlType.Q8_0 : GgmlType.F32;
    }

    internal static void AddHyperParameters(GgufWriter w, string arch, GemmaConfig c)
    {
        void U(string key, int value) => w.AddMetadata($"{arch}.{key}", GgufValue.FromUInt32((uint)value));
        void F(string key, double value) => w.AddMetadata($"{arch}.{key}", GgufValue.FromSingle((float)value));
        U("context_length", c.MaxPositionEmbeddings);
        U("embedding_length", c.HiddenSize);
        U("block_count", c.NumLayers);
        U("feed_forward_length", c.IntermediateSize);
        U("attention.head_count", c.NumHeads);
        U("attention.head_count_kv", c.NumKvHeads);
        U("attention.key_length", c.HeadDim);
        U("attention.value_length", c.HeadDim);
        F("attention.layer_norm_rms_epsilon", c.RmsNormEps);
        F("rope.freq_base", c.RopeTheta);
        if (c.Rules.LocalRopeBase) F("rope.freq_base_swa", c.RopeLocalTheta);
        if (c.AttnLogitSoftcapping is double attnCap) F("attn_logit_softcapping", attnCap);
        if (c.FinalLogitSoftcapping is double finalCap) F("final_logit_softcapping", finalCap);
        if (c.SlidingWindow is int window) U("attention.sliding_window", window);
    }

    /// <summary>
    /// Decodes each source row to float32, applies <c>row · scale + offset</c>, encodes it as <paramref name="type"/>.
    /// Rows are encoded in parallel in batches (the 4/6-bit quantizers search scales: ≈ 100–300 flops per weight) and
    /// written in order, so the file does not depend on the thread count.
    /// </summary>
    private static void WriteRows(TensorView t, long rows, long cols, GgmlType type, float offset, float scale, Stream stream, CancellationToken ct)
    {
        ElementTraits to = ElementTypes.Of(type);
        long rowBytes = to.ByteSize(cols);
        int batch = (int)Math.Clamp((4L << 20) / Math.Max(1, rowBytes), 1, 256);
        var bytes = new byte[batch * rowBytes];
        var options = new ParallelOptions { CancellationToken = ct };
        for (long r0 = 0; r0 < rows; r0 += batch)
        {
            ct.ThrowIfCancellationRequested();
            int n = (int)Math.Min(batch, rows - r0);
            Parallel.For(0, n, options, () => new float[cols], (i, _, row) =>
            {
                EncodeRow(t, r0 + i, row, to, offset, scale, bytes.AsSpan((int)(i * rowBytes), (int)rowBytes));
                return row;
            }, _ => { });
            stream.Write(bytes, 0, (int)(n * rowBytes));
        }
    }

    private static void EncodeRow(TensorView t, long r, float[] row, ElementTraits to, float offset, float scale, Span<byte> bytes)
    {
        t.ReadRow(r, row);
        for (int i = 0; i < row.Length; i++) row[i] = row[i] * scale + offset;
        to.Encode!(row, bytes);
    }

    private static string? ReadChatTemplate(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.TryGetProperty("chat_template", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new GemmaException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }
}
