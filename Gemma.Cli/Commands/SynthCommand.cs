using System.CommandLine;
using Gemma.Core.Config;
using Gemma.Core.Formats.Gguf;
using Gemma.Core.Synthetic;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma synth</c>: a random-weight model at real dimensions, for benchmarks without the download.</summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--config") { Description = "Model shape preset (gemma2-2b).", DefaultValueFactory = _ => "gemma2-2b" };
        var type = new Option<string>("--type") { Description = "bf16: a Hugging Face folder; q8_0, q4_k_m or bf16-gguf: one GGUF file.", DefaultValueFactory = _ => "bf16" };
        type.AcceptOnlyFromAmong("bf16", "q8_0", "q4_k_m", "bf16-gguf");
        var output = new Option<string>("--out", "-o") { Description = "Output folder (bf16) or .gguf file.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.json to copy into the folder." };
        var seed = new Option<ulong>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 42 };
        var command = new Command("synth", "Write a deterministic random-weight model with real dimensions (for benchmarks).")
        {
            preset, type, output, tokenizer, seed,
        };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            GemmaConfig config = GemmaPresets.ByName(parse.GetValue(preset)!);
            string target = parse.GetValue(output)!, kind = parse.GetValue(type)!;
            // GGUF outputs are converted from a bf16 folder written next to the target and deleted afterwards.
            string dir = kind == "bf16" ? target : target + ".synth-tmp";
            try
            {
                using (var bar = new ProgressBar("synth"))
                    SyntheticCheckpoint.Write(config, dir, parse.GetValue(seed), parse.GetValue(tokenizer), bar);
                if (kind != "bf16")
                {
                    using var bar = new ProgressBar("convert");
                    GgufModelWriter.Convert(dir, target, kind switch
                    {
                        "q8_0" => GgufOutputType.Q8_0,
                        "q4_k_m" => GgufOutputType.Q4_K_M,
                        _ => GgufOutputType.BF16,
                    }, bar);
                }
            }
            finally
            {
                if (kind != "bf16" && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
            Console.Error.WriteLine($"gemma: wrote a synthetic {parse.GetValue(preset)} model ({kind}) to {target}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
