using System.CommandLine;
using Gemma.Core.Config;
using Gemma.Core.Synthetic;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma synth</c>: a random-weight model at real dimensions, for benchmarks without the download.</summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--config") { Description = "Model shape preset (gemma2-2b).", DefaultValueFactory = _ => "gemma2-2b" };
        var type = new Option<string>("--type") { Description = "Weight type: bf16 (Hugging Face folder).", DefaultValueFactory = _ => "bf16" };
        type.AcceptOnlyFromAmong("bf16");
        var output = new Option<string>("--out", "-o") { Description = "Output folder.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.json to copy into the folder." };
        var seed = new Option<ulong>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 42 };
        var command = new Command("synth", "Write a deterministic random-weight model with real dimensions (for benchmarks).")
        {
            preset, type, output, tokenizer, seed,
        };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            GemmaConfig config = GemmaPresets.ByName(parse.GetValue(preset)!);
            string dir = parse.GetValue(output)!;
            using var bar = new ProgressBar("synth");
            SyntheticCheckpoint.Write(config, dir, parse.GetValue(seed), parse.GetValue(tokenizer),
                new Progress<(long Done, long Total)>(p => bar.Report(p.Done, p.Total)));
            bar.Dispose();
            Console.Error.WriteLine($"gemma: wrote a synthetic {parse.GetValue(preset)} model to {dir}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
