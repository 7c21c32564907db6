using System.CommandLine;
using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Core.Tokenization;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma generate</c>: continue a prompt (or answer it as a chat turn) and stream the text.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var sampling = new SamplingCliOptions();
        var prompt = new PromptInput(new Option<string?>("--prompt", "-p") { Description = "Prompt text." });
        var tokens = new Option<string?>("--tokens") { Description = "Prompt as comma-separated token ids (no BOS added)." };
        var chat = new Option<bool>("--chat") { Description = "Wrap the prompt in the Gemma chat template (one user turn) and stop at <end_of_turn>." };
        var system = new Option<string?>("--system") { Description = "With --chat: instructions folded into the user turn." };
        var command = new Command("generate", "Continue a prompt (--prompt, --prompt-file or standard input) and stream the generated text to stdout (stats on stderr).");
        common.AddTo(command);
        sampling.AddTo(command);
        prompt.AddTo(command);
        command.Add(tokens);
        command.Add(chat);
        command.Add(system);
        command.SetAction((parse, ct) => Task.FromResult(CliRunner.Run(() =>
        {
            string? idText = parse.GetValue(tokens);
            if (idText != null && prompt.Given(parse)) throw new UsageException("give a prompt (--prompt, --prompt-file) or --tokens, not both.");
            if (idText == null && !prompt.Given(parse) && !Console.IsInputRedirected)
                throw new UsageException("generate needs a prompt: --prompt, --prompt-file, text on standard input, or --tokens.");
            if (parse.GetValue(chat) && idText != null) throw new UsageException("--chat needs a text prompt, not --tokens.");
            SamplingOptions options = sampling.Read(parse);
            using GemmaModel model = common.Load(parse);
            options.Validate(model.Config.VocabSize);
            GemmaTokenizer tokenizer = model.RequireTokenizer();
            using var generator = new TextGenerator(model);
            int context = generator.Context.ContextLength;
            int[] ids;
            if (idText != null)
            {
                ids = TokenIds.Parse(idText, model.Config.VocabSize);
            }
            else
            {
                // Read no more text than the context could hold: every token covers at most the longest piece.
                long bound = Math.Min(TokenizeCommand.MaxChars, (long)context * LongestPiece(tokenizer));
                string text = prompt.Read(parse, (int)bound, $"a context of {context} tokens holds at most {bound:N0} (see --context)")
                    ?? throw new UsageException("generate needs a prompt: --prompt, --prompt-file, text on standard input, or --tokens (standard input was empty).");
                ids = parse.GetValue(chat) ? ChatTemplate.EncodeToIds(tokenizer, Messages(text, parse.GetValue(system)))
                    : tokenizer.EncodeToIds(text, addBos: true);
            }
            if (ids.Length >= context)
                throw new UsageException($"the prompt has {ids.Length} tokens but the context length is {context}; shorten it or raise --context.");
            if (ids.Length + options.MaxTokens > context)
                throw new UsageException($"the prompt ({ids.Length} tokens) + --max-tokens ({options.MaxTokens}) exceed the context length {context}; raise --context or lower --max-tokens.");
            using var cancel = ConsoleCancellation.Create(ct);
            foreach (string piece in generator.Generate(ids, options, cancel.Token))
            {
                Console.Out.Write(piece);
                Console.Out.Flush();
            }
            Console.Out.WriteLine();
            Stats.Print(generator.LastStats!);
            return generator.LastStats!.FinishReason == FinishReason.Cancelled ? ExitCodes.Cancelled : ExitCodes.Success;
        })));
        return command;
    }

    /// <summary>Characters of the longest vocabulary piece: no token covers more of the text.</summary>
    private static int LongestPiece(GemmaTokenizer tokenizer)
    {
        int longest = 1;
        for (int id = 0; id < tokenizer.VocabularySize; id++) longest = Math.Max(longest, tokenizer.GetPiece(id).Length);
        return longest;
    }

    private static List<GemmaChatMessage> Messages(string prompt, string? system)
    {
        var list = new List<GemmaChatMessage>();
        if (!string.IsNullOrWhiteSpace(system)) list.Add(GemmaChatMessage.System(system));
        list.Add(GemmaChatMessage.User(prompt));
        return list;
    }
}
