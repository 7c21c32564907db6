using System.CommandLine;
using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary>Options shared by the commands that load a model.</summary>
internal sealed class CommonOptions
{
    public Option<string?> Model { get; } = new("--model", "-m")
    {
        Description = "Model folder (Hugging Face layout) or GGUF file. Default: a model bundled into this executable, $GEMMA_MODEL, the HF cache of google/gemma-2-2b-jpn-it, then the embedded demo model.",
    };

    public Option<int> Threads { get; } = new("--threads", "-t")
    {
        Description = "Worker threads (default: the number of cores; more than that is capped to it, with a warning).",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public Option<int?> Context { get; } = new("--context", "-c")
    {
        Description = "Context length in tokens (default: min(max_position_embeddings, 8192)).",
    };

    public Option<string> KvCache { get; } = new("--kv-cache")
    {
        Description = "KV cache element type: f32 (default, exact) or f16 (half the memory, small logit error).",
        DefaultValueFactory = _ => "f32",
    };

    public Option<bool> NoMmap { get; } = new("--no-mmap")
    {
        Description = "Copy the weights into private memory (2 MiB transparent huge pages on Linux) instead of reading them from the mapped file: slower load, the whole file in this process's RSS.",
    };

    public CommonOptions()
    {
        KvCache.AcceptOnlyFromAmong("f32", "f16");
        Threads.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--threads must be at least 1."); });
        Context.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--context must be at least 1."); });
    }

    public void AddTo(Command command)
    {
        command.Add(Model);
        command.Add(Threads);
        command.Add(Context);
        command.Add(KvCache);
        command.Add(NoMmap);
    }

    public GemmaModel Load(ParseResult parse)
    {
        ModelLocation location = ModelLocator.Resolve(parse.GetValue(Model));
        if (parse.GetValue(Context) is int context && location.Path is string path && File.Exists(Path.Combine(path, "config.json")))
        {
            int max = Core.Config.GemmaConfigReader.ReadDirectory(path).MaxPositionEmbeddings;
            if (context > max) throw new UsageException($"--context {context} exceeds the model's max_position_embeddings {max}.");
        }
        int threads = parse.GetValue(Threads);
        if (threads > Environment.ProcessorCount)
        {
            Console.Error.WriteLine($"gemma: warning: --threads {threads} is more than the {Environment.ProcessorCount} cores of this machine; using {Environment.ProcessorCount}.");
            threads = Environment.ProcessorCount;
        }
        return GemmaModel.Load(location, new GemmaModelOptions
        {
            Threads = threads,
            ContextLength = parse.GetValue(Context),
            KvCache = parse.GetValue(KvCache) == "f16" ? KvCacheType.Float16 : KvCacheType.Float32,
            MemoryMap = !parse.GetValue(NoMmap),
        });
    }
}
