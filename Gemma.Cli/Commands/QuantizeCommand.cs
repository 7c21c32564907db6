using System.CommandLine;
using Gemma.Core;
using Gemma.Core.Formats.Gguf;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma quantize</c>: convert a Hugging Face folder to a GGUF file (llama.cpp's conventions).</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "Source Hugging Face model folder (default: as for generate)." };
        var type = new Option<string>("--type") { Description = "Weight type of the matrices: q8_0, q4_k_m, q4_0, q6_k, bf16, f16 or f32 (4/6-bit: llama.cpp's mixing rules).", DefaultValueFactory = _ => "q8_0" };
        type.AcceptOnlyFromAmong("q8_0", "q4_k_m", "q4_0", "q6_k", "bf16", "f16", "f32");
        var output = new Option<string>("--out", "-o") { Description = "Output .gguf file (written to a temporary name, renamed when complete).", Required = true };
        var command = new Command("quantize", "Convert a Hugging Face model folder to GGUF (q8_0, q4_k_m, q4_0, q6_k, bf16, f16 or f32).") { model, type, output };
        command.SetAction((parse, ct) => Task.FromResult(CliRunner.Run(() =>
        {
            ModelLocation location = ModelLocator.Resolve(parse.GetValue(model));
            if (location.Path is not string source || !Directory.Exists(source))
                throw new UsageException($"--model must be a Hugging Face model folder; '{location}' is not a folder.");
            GgufOutputType outType = parse.GetValue(type) switch
            {
                "q8_0" => GgufOutputType.Q8_0,
                "q4_k_m" => GgufOutputType.Q4_K_M,
                "q4_0" => GgufOutputType.Q4_0,
                "q6_k" => GgufOutputType.Q6_K,
                "bf16" => GgufOutputType.BF16,
                "f16" => GgufOutputType.F16,
                _ => GgufOutputType.F32,
            };
            string target = parse.GetValue(output)!;
            using var cancel = ConsoleCancellation.Create(ct);
            using (var bar = new ProgressBar("quantize"))
                GgufModelWriter.Convert(source, target, outType, bar, cancel.Token);
            Console.Error.WriteLine($"gemma: wrote {target} ({new FileInfo(target).Length / 1048576.0:F1} MiB, {parse.GetValue(type)})");
            return ExitCodes.Success;
        })));
        return command;
    }
}
