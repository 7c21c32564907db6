using Gemma.Core.Config;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Model;

namespace Gemma.Core;

/// <summary>
/// A loaded Gemma model: configuration and memory-mapped weights, read-only and safe to share between threads.
/// Each generation runs in its own <see cref="InferenceContext"/> (KV cache and activations).
/// </summary>
public sealed class GemmaModel : IDisposable
{
    private GemmaModel(GemmaConfig config, GemmaWeights weights, GemmaModelOptions options, string location)
    {
        Config = config;
        Weights = weights;
        Options = options;
        Location = location;
        Transformer = new Transformer(config, weights);
    }

    /// <summary>The model's configuration.</summary>
    public GemmaConfig Config { get; }

    /// <summary>The weights.</summary>
    public GemmaWeights Weights { get; }

    /// <summary>Options the model was loaded with.</summary>
    public GemmaModelOptions Options { get; }

    /// <summary>The folder or file the model came from.</summary>
    public string Location { get; }

    internal Transformer Transformer { get; }

    /// <summary>
    /// Loads a Hugging Face model folder (<c>config.json</c> + <c>model.safetensors</c> or shards with
    /// <c>model.safetensors.index.json</c>). Every tensor is validated against the config before use; any problem
    /// is a <see cref="GemmaException"/> naming the file.
    /// </summary>
    public static GemmaModel Load(string path, GemmaModelOptions? options = null)
    {
        options ??= new GemmaModelOptions();
        options.Validate();
        if (!Directory.Exists(path))
            throw new GemmaException(File.Exists(path) ? $"{path}: expected a Hugging Face model folder." : $"{path}: no such model folder.");
        GemmaConfig config = GemmaConfigReader.ReadDirectory(path);
        ITensorSource source = SafetensorsCheckpoint.Open(path);
        try
        {
            GemmaWeights weights = WeightsLoader.Load(config, source, TensorNaming.HuggingFace);
            return new GemmaModel(config, weights, options, path);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Creates a new, empty inference context (KV cache + buffers) for one sequence.</summary>
    public InferenceContext CreateContext(int? contextLength = null)
    {
        int length = contextLength ?? Options.ContextLength ?? Math.Min(Config.MaxPositionEmbeddings, 8192);
        if (length < 1) throw new GemmaException($"Context length must be at least 1, got {length}.");
        return new InferenceContext(this, length);
    }

    /// <inheritdoc />
    public void Dispose() => Weights.Dispose();
}
