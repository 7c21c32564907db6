namespace Gemma.Cli;

/// <summary>
/// Finds the model to use: <c>--model</c>, then <c>$GEMMA_MODEL</c>, then the Hugging Face cache copy of
/// google/gemma-2-2b-jpn-it, then the tiny demo model shipped beside the executable. Says on stderr which it took
/// unless the user named it.
/// </summary>
internal static class ModelLocator
{
    public const string DefaultRepo = "google/gemma-2-2b-jpn-it";

    public static string DemoModelPath => Path.Combine(AppContext.BaseDirectory, "demo-model", "gemma2-ja-demo");

    public static string Resolve(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option)) return option;
        string? env = Environment.GetEnvironmentVariable("GEMMA_MODEL");
        if (!string.IsNullOrWhiteSpace(env))
        {
            Console.Error.WriteLine($"gemma: using GEMMA_MODEL={env}");
            return env;
        }
        string? cached = FindInHuggingFaceCache(DefaultRepo);
        if (cached != null)
        {
            Console.Error.WriteLine($"gemma: using {DefaultRepo} from the Hugging Face cache: {cached}");
            return cached;
        }
        Console.Error.WriteLine($"gemma: no --model, GEMMA_MODEL or cached {DefaultRepo}; using the embedded demo model " +
                                $"(7.6M parameters, Japanese technical prose): {DemoModelPath}");
        return DemoModelPath;
    }

    /// <summary>The newest snapshot folder of <paramref name="repo"/> in <c>$HF_HUB_CACHE</c>, <c>$HF_HOME/hub</c> or <c>~/.cache/huggingface/hub</c>.</summary>
    public static string? FindInHuggingFaceCache(string repo)
    {
        string? hub = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        if (string.IsNullOrEmpty(hub))
        {
            string? home = Environment.GetEnvironmentVariable("HF_HOME");
            hub = !string.IsNullOrEmpty(home) ? Path.Combine(home, "hub")
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub");
        }
        string snapshots = Path.Combine(hub, "models--" + repo.Replace("/", "--"), "snapshots");
        if (!Directory.Exists(snapshots)) return null;
        return new DirectoryInfo(snapshots).GetDirectories()
            .Where(d => File.Exists(Path.Combine(d.FullName, "config.json")))
            .OrderByDescending(d => d.LastWriteTimeUtc).Select(d => d.FullName).FirstOrDefault();
    }
}
