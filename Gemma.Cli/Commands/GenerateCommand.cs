using System.CommandLine;
using Gemma.Core;
using Gemma.Kernels;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma generate</c>: continue a prompt and stream the result.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var tokens = new Option<string?>("--tokens") { Description = "Prompt as comma-separated token ids." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 128 };
        maxTokens.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--max-tokens must be non-negative."); });
        var command = new Command("generate", "Continue a prompt (greedy) and stream the generated tokens.");
        common.AddTo(command);
        command.Add(tokens);
        command.Add(maxTokens);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            using GemmaModel model = common.Load(parse);
            string? tokenText = parse.GetValue(tokens) ?? throw new UsageException("generate needs --tokens.");
            int[] prompt = TokenIds.Parse(tokenText, model.Config.VocabSize);
            int max = parse.GetValue(maxTokens);
            using InferenceContext ctx = model.CreateContext();
            if (prompt.Length + max > ctx.ContextLength)
                throw new UsageException($"prompt ({prompt.Length}) + --max-tokens ({max}) exceed the context length {ctx.ContextLength}.");
            ReadOnlySpan<float> logits = ctx.Prefill(prompt);
            var eos = new HashSet<int>(model.Config.EosTokenIds);
            for (int i = 0; i < max; i++)
            {
                int next = Activations.ArgMax(logits);
                Console.Out.Write(i == 0 ? $"{next}" : $",{next}");
                if (eos.Contains(next)) break;
                logits = ctx.Decode(next);
            }
            Console.Out.WriteLine();
            return ExitCodes.Success;
        }));
        return command;
    }
}
