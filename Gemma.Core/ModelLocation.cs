using Gemma.Core.Formats;

namespace Gemma.Core;

/// <summary>Where a <see cref="ModelLocation"/> came from, in the order <see cref="ModelLocation.Resolve(string?)"/> tries them.</summary>
public enum ModelSource
{
    /// <summary>A path the caller gave (the CLI's <c>--model</c>).</summary>
    Explicit,
    /// <summary>A GGUF appended to the running executable by <c>gemma bundle</c>.</summary>
    Bundle,
    /// <summary>The <c>GEMMA_MODEL</c> environment variable.</summary>
    EnvironmentVariable,
    /// <summary>The Hugging Face cache copy of <see cref="ModelLocation.DefaultRepository"/>.</summary>
    HuggingFaceCache,
    /// <summary>The 7.6M-parameter demo model embedded in Gemma.Core (Japanese technical prose; knows nothing).</summary>
    Demo,
}

/// <summary>
/// Finds the model to use the way the <c>gemma</c> command does: an explicit path, then a model bundled into the
/// running executable, then <c>$GEMMA_MODEL</c>, then the Hugging Face cache copy of google/gemma-2-2b-jpn-it
/// (<c>$HF_HUB_CACHE</c>, <c>$HF_HOME/hub</c>, <c>~/.cache/huggingface/hub</c>), then the demo model embedded in
/// this library. Load the result with <see cref="GemmaModel.Load(ModelLocation, GemmaModelOptions?)"/>.
/// </summary>
public sealed class ModelLocation
{
    /// <summary>The environment variable naming a default model folder or GGUF file.</summary>
    public const string EnvironmentVariable = "GEMMA_MODEL";

    /// <summary>The Hugging Face repository looked up in the cache.</summary>
    public const string DefaultRepository = "google/gemma-2-2b-jpn-it";

    /// <summary>Name of the embedded demo model (also its manifest resource, with <c>.gguf</c>).</summary>
    internal const string DemoName = "gemma2-ja-demo";

    private ModelLocation(ModelSource source, string? path, ModelBundle.Region? bundle = null)
    {
        Source = source;
        Path = path;
        BundleRegion = bundle;
    }

    /// <summary>Where the model came from.</summary>
    public ModelSource Source { get; }

    /// <summary>
    /// The model folder or GGUF file; for <see cref="ModelSource.Bundle"/> the executable that carries the GGUF;
    /// null for <see cref="ModelSource.Demo"/>, which lives in memory (a resource of this assembly).
    /// </summary>
    public string? Path { get; }

    internal ModelBundle.Region? BundleRegion { get; }

    /// <summary>The demo model embedded in Gemma.Core.</summary>
    public static ModelLocation Demo { get; } = new(ModelSource.Demo, null);

    /// <summary>
    /// Resolves <paramref name="path"/> when it is given (not checked here: <see cref="GemmaModel.Load(ModelLocation, GemmaModelOptions?)"/>
    /// reports a bad one), otherwise the first of: a bundle in the running executable, <c>$GEMMA_MODEL</c>, the Hugging
    /// Face cache, the demo model. A bundle trailer that is present but corrupt is a <see cref="GemmaException"/>.
    /// </summary>
    public static ModelLocation Resolve(string? path = null) =>
        Resolve(path, Environment.GetEnvironmentVariable, Environment.ProcessPath);

    /// <summary><see cref="Resolve(string?)"/> with the environment and the executable supplied (tests).</summary>
    internal static ModelLocation Resolve(string? path, Func<string, string?> environment, string? executable)
    {
        if (!string.IsNullOrWhiteSpace(path)) return new ModelLocation(ModelSource.Explicit, path);
        if (executable != null && ModelBundle.Find(executable) is ModelBundle.Region bundle)
            return new ModelLocation(ModelSource.Bundle, executable, bundle);
        string? env = environment(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return new ModelLocation(ModelSource.EnvironmentVariable, env);
        string? cached = FindInHuggingFaceCache(DefaultRepository, environment);
        if (cached != null) return new ModelLocation(ModelSource.HuggingFaceCache, cached);
        return Demo;
    }

    /// <summary>
    /// The newest snapshot folder (one holding a <c>config.json</c>) of <paramref name="repository"/> in the Hugging Face
    /// cache — <c>$HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c> — or null.
    /// </summary>
    public static string? FindInHuggingFaceCache(string repository = DefaultRepository) =>
        FindInHuggingFaceCache(repository, Environment.GetEnvironmentVariable);

    private static string? FindInHuggingFaceCache(string repository, Func<string, string?> environment)
    {
        ArgumentException.ThrowIfNullOrEmpty(repository);
        string? hub = environment("HF_HUB_CACHE");
        if (string.IsNullOrEmpty(hub))
        {
            string? home = environment("HF_HOME");
            hub = !string.IsNullOrEmpty(home) ? System.IO.Path.Combine(home, "hub")
                : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub");
        }
        string snapshots = System.IO.Path.Combine(hub, "models--" + repository.Replace("/", "--"), "snapshots");
        try
        {
            if (!Directory.Exists(snapshots)) return null;
            return new DirectoryInfo(snapshots).GetDirectories()
                .Where(d => File.Exists(System.IO.Path.Combine(d.FullName, "config.json")))
                .OrderByDescending(d => d.LastWriteTimeUtc).Select(d => d.FullName).FirstOrDefault();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // an unreadable cache is no cache
        }
    }

    /// <summary>A short description for messages, e.g. <c>gemma2-ja-demo (embedded demo model)</c>.</summary>
    public override string ToString() => Source switch
    {
        ModelSource.Demo => $"{DemoName} (embedded demo model)",
        ModelSource.Bundle => $"{Path} (bundled model, {BundleRegion!.Value.ModelLength / 1048576.0:F1} MiB)",
        _ => Path!,
    };
}
