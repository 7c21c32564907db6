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
        Description = "Worker threads (default: the number of cores).",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public Option<int?> Context { get; } = new("--context", "-c")
    {
        Description = "Context length in tokens (default: min(max_position_embeddings, 8192)).",
    };

    public CommonOptions()
    {
        Threads.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--threads must be at least 1."); });
        Context.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--context must be at least 1."); });
    }

    public void AddTo(Command command)
    {
        command.Add(Model);
        command.Add(Threads);
        command.Add(Context);
    }

    public GemmaModel Load(ParseResult parse)
    {
        ModelLocation location = ModelLocator.Resolve(parse.GetValue(Model));
        if (parse.GetValue(Context) is int context && location.Path is string path && File.Exists(Path.Combine(path, "config.json")))
        {
            int max = Core.Config.GemmaConfigReader.ReadDirectory(path).MaxPositionEmbeddings;
            if (context > max) throw new UsageException($"--context {context} exceeds the model's max_position_embeddings {max}.");
        }
        return GemmaModel.Load(location, new GemmaModelOptions { Threads = parse.GetValue(Threads), ContextLength = parse.GetValue(Context) });
    }
}
