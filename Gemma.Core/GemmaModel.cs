using Gemma.Core.Config;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Gguf;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Generation;
using Gemma.Core.Model;
using Gemma.Core.Tokenization;
using Gemma.Kernels;

namespace Gemma.Core;

/// <summary>
/// A loaded Gemma model: configuration and memory-mapped weights, read-only and safe to share between threads.
/// Each generation runs in its own <see cref="InferenceContext"/> (KV cache and activations).
/// </summary>
public sealed class GemmaModel : IDisposable
{
    private GemmaModel(GemmaConfig config, GemmaWeights weights, GemmaTokenizer? tokenizer, GemmaModelOptions options, string location)
    {
        Config = config;
        Tokenizer = tokenizer;
        Weights = weights;
        Options = options;
        Location = location;
        Transformer = new Transformer(config, weights);
    }

    /// <summary>The model's configuration.</summary>
    public GemmaConfig Config { get; }

    /// <summary>The tokenizer, when the model folder has one (<c>tokenizer.json</c> or <c>tokenizer.model</c>).</summary>
    public GemmaTokenizer? Tokenizer { get; }

    /// <summary>The weights.</summary>
    internal GemmaWeights Weights { get; }

    /// <summary>Options the model was loaded with.</summary>
    public GemmaModelOptions Options { get; }

    /// <summary>The folder or file the model came from.</summary>
    public string Location { get; }

    internal Transformer Transformer { get; }

    private WorkerPool? _pool;
    private readonly Lock _poolGate = new();

    /// <summary>
    /// The model's worker threads, shared by all of its inference contexts (null when <see cref="GemmaModelOptions.Threads"/>
    /// is 1). Created on first use, so loading a model for inspection starts no threads. One pool per model rather than
    /// per context: four pooled generators would otherwise keep 4 × (threads − 1) threads spinning on the same cores.
    /// Concurrent contexts take turns per kernel call (<see cref="WorkerPool.For{T}"/> serializes callers), so each
    /// call still gets every thread and nothing can deadlock.
    /// </summary>
    internal WorkerPool? Pool
    {
        get
        {
            if (Options.Threads <= 1) return null;
            if (Volatile.Read(ref _pool) is { } pool) return pool;
            lock (_poolGate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return _pool ??= new WorkerPool(Options.Threads);
            }
        }
    }

    private bool _disposed;

    /// <summary>
    /// Loads a Hugging Face model folder (<c>config.json</c> + <c>model.safetensors</c> or shards with
    /// <c>model.safetensors.index.json</c>). Every tensor is validated against the config before use; any problem
    /// is a <see cref="GemmaException"/> naming the file.
    /// </summary>
    public static GemmaModel Load(string path, GemmaModelOptions? options = null)
    {
        options ??= new GemmaModelOptions();
        options.Validate();
        options = options.CappedToCores();
        if (File.Exists(path))
        {
            if (!IsGguf(path)) throw new GemmaException($"{path}: not a model: expected a Hugging Face model folder or a GGUF file.");
            return LoadGguf(path, options);
        }
        if (!Directory.Exists(path)) throw new GemmaException($"{path}: no such model folder or GGUF file.");
        GemmaConfig config = GemmaConfigReader.ReadDirectory(path);
        if (options.ContextLength > config.MaxPositionEmbeddings)
            throw new GemmaException($"Context length {options.ContextLength} exceeds the model's max_position_embeddings {config.MaxPositionEmbeddings} ({path}).");
        ITensorSource source = SafetensorsCheckpoint.Open(path, copy: !options.MemoryMap);
        try
        {
            GemmaTokenizer? tokenizer = HasTokenizer(path) ? GemmaTokenizer.FromModelDirectory(path) : null;
            if (tokenizer != null && tokenizer.VocabularySize > config.VocabSize)
                throw new GemmaException($"{path}: the tokenizer has {tokenizer.VocabularySize} tokens but the model only {config.VocabSize}.");
            GemmaWeights weights = WeightsLoader.Load(config, source, TensorNaming.HuggingFace);
            return new GemmaModel(config, weights, tokenizer, options, path);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the model <see cref="ModelLocation.Resolve(string?)"/> finds: a bundle in the running executable,
    /// <c>$GEMMA_MODEL</c>, the Hugging Face cache copy of google/gemma-2-2b-jpn-it, else the embedded demo model —
    /// so a program works out of the box and picks up the real model once it is downloaded.
    /// </summary>
    public static GemmaModel LoadDefault(GemmaModelOptions? options = null) => Load(ModelLocation.Resolve(), options);

    /// <summary>
    /// Loads the model at <paramref name="location"/>: a folder or GGUF file (<see cref="Load(string, GemmaModelOptions?)"/>),
    /// the GGUF region of a bundled executable (mapped read-only in place), or the embedded demo model (read in place
    /// from this assembly's image: no copy, no file).
    /// </summary>
#pragma warning disable RS0026 // two Load overloads with an optional options parameter: their first parameters differ in type, no call is ambiguous
    public static GemmaModel Load(ModelLocation location, GemmaModelOptions? options = null)
#pragma warning restore RS0026
    {
        ArgumentNullException.ThrowIfNull(location);
        options ??= new GemmaModelOptions();
        options.Validate();
        switch (location.Source)
        {
            case ModelSource.Demo:
                return LoadGguf(OpenDemo(), location.ToString(), options);
            case ModelSource.Bundle:
                ModelBundle.Region region = location.BundleRegion!.Value;
                string name = $"{Path.GetFileName(location.Path)} (bundled model)";
                return LoadGguf(GgufFile.Open(location.Path!, region.ModelOffset, region.ModelLength, name, copy: !options.MemoryMap), location.ToString(), options);
            default:
                return Load(location.Path!, options);
        }
    }

    /// <summary>
    /// The demo GGUF embedded in this assembly. The runtime maps the assembly image (under the JIT a file mapping, under
    /// Native AOT the executable's read-only data), so the resource stream is an <see cref="UnmanagedMemoryStream"/> over
    /// those pages and the weights are used in place; a host that loaded the assembly from a byte array gives another
    /// stream kind, which is copied once.
    /// </summary>
    private static unsafe GgufFile OpenDemo()
    {
        string resource = ModelLocation.DemoName + ".gguf";
        using Stream stream = typeof(GemmaModel).Assembly.GetManifestResourceStream(resource)
            ?? throw new GemmaException($"The embedded demo model ({resource}) is missing from {typeof(GemmaModel).Assembly.GetName().Name}.");
        if (stream is UnmanagedMemoryStream memory)
            return GgufFile.FromUnmanagedMemory(memory.PositionPointer, memory.Length, resource);
        var copy = new byte[stream.Length];
        stream.ReadExactly(copy);
        return GgufFile.FromMemory(copy, resource);
    }

    /// <summary>Loads a GGUF file: config from <c>{arch}.*</c>, tokenizer from <c>tokenizer.ggml.*</c>, weights in place.</summary>
    private static GemmaModel LoadGguf(string path, GemmaModelOptions options) => LoadGguf(GgufFile.Open(path, copy: !options.MemoryMap), path, options);

    /// <summary>Loads an opened GGUF (a file, a region of one, or memory), which the model then owns.</summary>
    private static GemmaModel LoadGguf(GgufFile file, string location, GemmaModelOptions options)
    {
        string path = file.Path;
        GgufCheckpoint source = GgufCheckpoint.Open(file);
        try
        {
            if (!source.Tensors.TryGetValue(TensorNaming.Gguf.Name(TensorRole.Embedding, -1, null!), out TensorView? embedding) || embedding.Shape.Length != 2)
                throw new GemmaException($"{path}: no 2-D token_embd.weight tensor.");
            GemmaConfig config = GgufGemmaConfig.Read(source.File, checked((int)embedding.Shape[0]));
            GemmaTokenizer? tokenizer = source.File.Metadata.TryGetValue("tokenizer.ggml.model", out _) ? GgufVocabulary.Read(source.File) : null;
            if (tokenizer != null && tokenizer.VocabularySize > config.VocabSize)
                throw new GemmaException($"{path}: the vocabulary has {tokenizer.VocabularySize} tokens but token_embd only {config.VocabSize} rows.");
            GemmaWeights weights = WeightsLoader.Load(config, source, TensorNaming.Gguf);
            return new GemmaModel(config, weights, tokenizer, options, location);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>True when the file starts with the GGUF magic (or is named *.gguf, so a broken one gets the GGUF reader's message).</summary>
    private static bool IsGguf(string path)
    {
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return true;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            Span<byte> magic = stackalloc byte[4];
            return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GemmaException($"{path}: cannot read ({e.Message}).", e);
        }
    }

    private static bool HasTokenizer(string dir) =>
        File.Exists(Path.Combine(dir, "tokenizer.json")) || File.Exists(Path.Combine(dir, "tokenizer.model"));

    /// <summary>The tokenizer, or a clear error when the model has none.</summary>
    public GemmaTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new GemmaException($"{Location}: the model has no tokenizer (tokenizer.json or tokenizer.model).");

    /// <summary>
    /// Continues <paramref name="prompt"/> (raw text; a BOS token is prepended, control-token text in it is parsed as the
    /// reference tokenizer does) and streams the generated text.
    /// </summary>
    public async IAsyncEnumerable<string> CompleteAsync(string prompt, SamplingOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        int[] ids = RequireTokenizer().EncodeToIds(prompt, addBos: true);
        using var generator = new TextGenerator(this);
        await foreach (string text in generator.GenerateAsync(ids, options ?? new SamplingOptions(), cancellationToken))
            yield return text;
    }

    /// <summary>Starts a multi-turn chat that reuses its KV cache from turn to turn.</summary>
    public ChatSession CreateChatSession(ChatSessionOptions? options = null) => new(this, options ?? new ChatSessionOptions());

    /// <summary>Creates a new, empty inference context (KV cache + buffers) for one sequence.</summary>
    public InferenceContext CreateContext(int? contextLength = null)
    {
        return new InferenceContext(this, ResolveContextLength(contextLength));
    }

    /// <summary>The context length a new context gets for <paramref name="contextLength"/> (null: the default), validated.</summary>
    internal int ResolveContextLength(int? contextLength)
    {
        int length = contextLength ?? Options.ContextLength ?? Math.Min(Config.MaxPositionEmbeddings, 8192);
        if (length < 1) throw new GemmaException($"Context length must be at least 1, got {length}.");
        if (length > Config.MaxPositionEmbeddings)
            throw new GemmaException($"Context length {length} exceeds the model's max_position_embeddings {Config.MaxPositionEmbeddings}.");
        return length;
    }

    /// <summary>Releases the weights and stops the worker threads; no context of this model may be running.</summary>
    public void Dispose()
    {
        lock (_poolGate)
        {
            if (_disposed) return;
            _disposed = true;
            _pool?.Dispose();
        }
        Weights.Dispose();
    }
}
