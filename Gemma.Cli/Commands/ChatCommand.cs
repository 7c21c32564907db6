using System.CommandLine;
using System.Text;
using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma chat</c>: an interactive conversation. Streams replies; <c>/reset</c> starts over, <c>/exit</c> (or end
/// of input) quits; a line ending in <c>\</c> continues the message on the next line; Ctrl-C cancels the reply
/// being written, not the program.
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var sampling = new SamplingCliOptions();
        var system = new Option<string?>("--system") { Description = "Instructions folded into the first user turn." };
        var command = new Command("chat", "Chat interactively (/reset, /exit; end a line with \\ to continue it; Ctrl-C cancels a reply).");
        common.AddTo(command);
        sampling.AddTo(command);
        command.Add(system);
        command.SetAction((parse, ct) => Task.FromResult(CliRunner.Run(() =>
        {
            var options = sampling.Read(parse);
            using GemmaModel model = common.Load(parse);
            options.Validate(model.Config.VocabSize);
            model.RequireTokenizer();
            using ChatSession session = model.CreateChatSession(new ChatSessionOptions { SystemPrompt = parse.GetValue(system), Sampling = options });
            bool interactive = !Console.IsInputRedirected;
            if (interactive) Console.Error.WriteLine("gemma chat — /reset to start over, /exit to quit, end a line with \\ to continue it.");
            while (true)
            {
                if (interactive) Console.Error.Write("> ");
                string? message = ReadMessage();
                if (message == null || message.Trim() == "/exit") break;
                if (message.Trim() == "/reset")
                {
                    session.Reset();
                    Console.Error.WriteLine("(conversation reset)");
                    continue;
                }
                if (message.Trim().Length == 0) continue;
                using var cancel = ConsoleCancellation.Create(ct);
                try
                {
                    var reply = session.SendAsync(message, options, cancel.Token).GetAsyncEnumerator(cancel.Token);
                    try
                    {
                        while (reply.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                        {
                            Console.Out.Write(reply.Current);
                            Console.Out.Flush();
                        }
                    }
                    finally
                    {
                        reply.DisposeAsync().AsTask().GetAwaiter().GetResult();
                    }
                }
                catch (OperationCanceledException)
                {
                }
                catch (GemmaException e)
                {
                    // A message the session cannot take (e.g. longer than the context) ends that turn, not the chat.
                    Console.Error.WriteLine($"gemma: {e.Message}");
                    continue;
                }
                Console.Out.WriteLine();
                if (session.LastStats is { } stats) Stats.Print(stats);
                if (ct.IsCancellationRequested) return ExitCodes.Cancelled;
            }
            return ExitCodes.Success;
        })));
        return command;
    }

    /// <summary>One message: a line, or several when lines end with a backslash. Null at end of input.</summary>
    private static string? ReadMessage()
    {
        var text = new StringBuilder();
        while (true)
        {
            string? line = Console.In.ReadLine();
            if (line == null) return text.Length > 0 ? text.ToString() : null;
            if (line.EndsWith('\\'))
            {
                text.Append(line, 0, line.Length - 1).Append('\n');
                continue;
            }
            return text.Append(line).ToString();
        }
    }
}
