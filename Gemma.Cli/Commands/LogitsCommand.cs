using System.CommandLine;
using System.Runtime.InteropServices;
using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma logits</c>: writes the float32 logits of every given token, for checking against a reference.</summary>
internal static class LogitsCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 2,17,301.", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output file: float32 little-endian [n_tokens, vocab].", Required = true };
        var decode = new Option<bool>("--decode") { Description = "Feed the tokens one at a time through the KV cache instead of one batched prefill." };
        var command = new Command("logits", "Write the logits of one forward pass over --tokens to a file.");
        common.AddTo(command);
        command.Add(tokens);
        command.Add(output);
        command.Add(decode);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            using GemmaModel model = common.Load(parse);
            int[] ids = TokenIds.Parse(parse.GetValue(tokens)!, model.Config.VocabSize);
            if (parse.GetValue(common.Context) is int context && ids.Length > context)
                throw new UsageException($"--tokens has {ids.Length} tokens but --context is {context}.");
            int vocab = model.Config.VocabSize;
            using InferenceContext ctx = model.CreateContext(Math.Max(ids.Length, 1));
            var logits = new float[(long)ids.Length * vocab];
            if (parse.GetValue(decode))
            {
                for (int i = 0; i < ids.Length; i++) ctx.Decode(ids[i]).CopyTo(logits.AsSpan(i * vocab));
            }
            else
            {
                ctx.Prefill(ids, logits);
            }
            string path = parse.GetValue(output)!;
            AtomicFile.Write(path, stream => stream.Write(MemoryMarshal.AsBytes(logits.AsSpan())));
            Console.Error.WriteLine($"gemma: wrote [{ids.Length}, {vocab}] float32 logits to {path}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
