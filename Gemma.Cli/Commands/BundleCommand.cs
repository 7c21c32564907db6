using System.CommandLine;
using System.Runtime.CompilerServices;
using Gemma.Core;
using Gemma.Core.Formats;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma bundle</c>: a copy of this executable with a GGUF appended (llamafile-style), which then uses that model
/// by default — one file to copy to an edge box. The format is <see cref="ModelBundle"/>'s.
/// </summary>
internal static class BundleCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "GGUF file to append (convert a Hugging Face folder with `gemma quantize` first).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The executable to write (written to a temporary name, renamed when complete).", Required = true };
        var command = new Command("bundle", "Write a copy of this executable that carries a GGUF model inside itself and uses it by default.") { model, output };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string gguf = parse.GetValue(model)!, target = parse.GetValue(output)!;
            string host = Environment.ProcessPath ?? throw new UsageException("cannot tell which executable is running.");
            if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
                throw new UsageException("bundle copies the running executable, and this is the dotnet host: run the gemma executable " +
                                         "(the Native AOT one from scripts/publish-aot.sh for a single file).");
            if (Directory.Exists(gguf) || !File.Exists(gguf))
                throw new UsageException($"--model must be a GGUF file ('{gguf}' is not a file); convert a folder with `gemma quantize` first.");
            if (Path.GetFullPath(target) == Path.GetFullPath(host)) throw new UsageException("--out must not be the running executable.");
            // Refuse what would not run: the GGUF must load as a Gemma model with a vocabulary.
            using (GemmaModel check = GemmaModel.Load(gguf, new GemmaModelOptions { Threads = 1, ContextLength = 1 }))
                check.RequireTokenizer();
            try
            {
                ModelBundle.Write(host, gguf, target);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new IOException(e.Message, e);
            }
            Console.Error.WriteLine($"gemma: wrote {target} ({new FileInfo(target).Length / 1048576.0:F1} MiB, model {new FileInfo(gguf).Length / 1048576.0:F1} MiB); " +
                                    "it uses the bundled model unless given --model");
            if (RuntimeFeature.IsDynamicCodeSupported)
                Console.Error.WriteLine("gemma: note: this gemma runs on the JIT, so the copy needs gemma.dll and the rest of its folder beside it; " +
                                        "publish with scripts/publish-aot.sh for a single-file executable.");
            return ExitCodes.Success;
        }));
        return command;
    }
}
