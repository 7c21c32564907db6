using Gemma.Core.Config;
using Gemma.Core.Formats;
using Gemma.Kernels;

namespace Gemma.Core.Model;

/// <summary>
/// Turns a validated <see cref="ITensorSource"/> into <see cref="GemmaWeights"/>: checks that exactly the tensors the
/// config implies are present, each with the expected shape and a supported dtype, before anything is used.
/// </summary>
internal static unsafe class WeightsLoader
{
    /// <summary>Builds the weights; on failure the source is left for the caller to dispose.</summary>
    public static GemmaWeights Load(GemmaConfig config, ITensorSource source, TensorNaming naming)
    {
        var owned = new List<NativeBuffer>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var ctx = new Context(config, source, naming, owned, used);
            int h = config.HiddenSize;
            WeightMatrix embedding = ctx.Matrix(TensorRole.Embedding, -1, config.VocabSize, h);
            WeightMatrix head = config.TieWordEmbeddings ? embedding : ctx.Matrix(TensorRole.OutputHead, -1, config.VocabSize, h);
            float[] finalNorm = ctx.Norm(TensorRole.FinalNorm, -1, h);
            var layers = new LayerWeights[config.NumLayers];
            for (int l = 0; l < layers.Length; l++)
            {
                bool post = config.HasPostNorms, qk = config.HasQkNorm;
                layers[l] = new LayerWeights
                {
                    QProj = ctx.Matrix(TensorRole.QProj, l, config.QueryDim, h),
                    KProj = ctx.Matrix(TensorRole.KProj, l, config.KvDim, h),
                    VProj = ctx.Matrix(TensorRole.VProj, l, config.KvDim, h),
                    OProj = ctx.Matrix(TensorRole.OProj, l, h, config.QueryDim),
                    GateProj = ctx.Matrix(TensorRole.GateProj, l, config.IntermediateSize, h),
                    UpProj = ctx.Matrix(TensorRole.UpProj, l, config.IntermediateSize, h),
                    DownProj = ctx.Matrix(TensorRole.DownProj, l, h, config.IntermediateSize),
                    InputNorm = ctx.Norm(TensorRole.InputNorm, l, h),
                    PostAttentionNorm = post ? ctx.Norm(TensorRole.PostAttentionNorm, l, h) : null,
                    PreFeedforwardNorm = ctx.Norm(TensorRole.PreFeedforwardNorm, l, h),
                    PostFeedforwardNorm = post ? ctx.Norm(TensorRole.PostFeedforwardNorm, l, h) : null,
                    QNorm = qk ? ctx.Norm(TensorRole.QNorm, l, config.HeadDim) : null,
                    KNorm = qk ? ctx.Norm(TensorRole.KNorm, l, config.HeadDim) : null,
                };
            }
            string? extra = source.Tensors.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal).FirstOrDefault();
            if (extra != null)
                throw new GemmaException($"{source.Location}: unexpected tensor '{extra}' ({source.Tensors.Count - used.Count} tensor(s) not used by a {config.Family} model with {config.NumLayers} layers).");
            return new GemmaWeights(source, embedding, head, finalNorm, layers, owned);
        }
        catch
        {
            foreach (NativeBuffer b in owned) b.Dispose();
            throw;
        }
    }

    private sealed class Context(GemmaConfig config, ITensorSource source, TensorNaming naming, List<NativeBuffer> owned, HashSet<string> used)
    {
        private TensorView Find(TensorRole role, int layer, params long[] shape)
        {
            string name = naming.Name(role, layer, config);
            if (!source.Tensors.TryGetValue(name, out TensorView? t))
                throw new GemmaException($"{source.Location}: tensor '{name}' is missing.");
            if (!t.Shape.SequenceEqual(shape))
                throw new GemmaException($"{t.FilePath}: tensor '{name}' has shape {t.ShapeText}, expected [{string.Join(", ", shape)}] from the config.");
            used.Add(name);
            return t;
        }

        public WeightMatrix Matrix(TensorRole role, int layer, int rows, int cols)
        {
            TensorView t = Find(role, layer, rows, cols);
            ElementTraits traits = t.Traits;
            if (traits.InPlace is WeightType inPlace)
            {
                // In place (zero-copy from the mapping).
                if (cols % traits.BlockSize != 0)
                    throw new GemmaException($"{t.FilePath}: tensor '{t.Name}' is {t.Type} with rows of {cols}, not a multiple of its block ({traits.BlockSize}).");
                return new WeightMatrix(t.Data, rows, cols, inPlace);
            }
            if (traits.LoadAs is not WeightType target || traits.Decode is null)
                throw new GemmaException($"{t.FilePath}: tensor '{t.Name}' has type {t.Type}, which this engine cannot load (supported: {ElementTypes.Decodable}).");
            return Convert(t, rows, cols, target);
        }

        /// <summary>
        /// Decodes a tensor the kernels cannot read in place row by row and re-encodes it as <paramref name="target"/>
        /// in memory owned by the weights (F16 → exact F32; block formats → Q8_0, about the memory of a Q8_0 file;
        /// rows that do not fill Q8_0 blocks become F32).
        /// </summary>
        private WeightMatrix Convert(TensorView t, int rows, int cols, WeightType target)
        {
            ElementTraits to = ElementTypes.Of(target);
            if (cols % to.BlockSize != 0) to = ElementTypes.F32;
            long rowBytes = to.ByteSize(cols);
            var buffer = new NativeBuffer(rows * rowBytes);
            owned.Add(buffer);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                t.ReadRow(r, row);
                to.Encode!(row, new Span<byte>(buffer.Pointer + r * rowBytes, (int)rowBytes));
            }
            return new WeightMatrix(buffer.Pointer, rows, cols, to.InPlace!.Value);
        }

        /// <summary>Norm scale as float32 <c>1 + w</c> (Gemma's RMSNorm centres its weight on zero).</summary>
        public float[] Norm(TensorRole role, int layer, int length)
        {
            TensorView t = Find(role, layer, length);
            var result = new float[length];
            t.ReadRow(0, result);
            if (!naming.NormsIncludeOne)
                for (int i = 0; i < length; i++) result[i] = 1f + result[i];
            return result;
        }
    }
}
