using System.CommandLine;
using System.Text;
using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma chat</c>: an interactive conversation. Streams replies; a line that is a single <c>/word</c> is a command
/// (<c>/help</c>, <c>/reset</c>, <c>/exit</c> or <c>/quit</c>; end of input quits too); <c>//text</c> sends
/// <c>/text</c>; a line ending in <c>\</c> continues the message on the next line. Ctrl-C cancels the reply being
/// written; at the prompt it ends the chat (exit code 130). A turn that fails (e.g. a message longer than the context)
/// is reported on stderr and the chat goes on; the exit code is then 2.
/// </summary>
internal static class ChatCommand
{
    private const string Commands = "/help  this list\n/reset  start a new conversation\n/exit, /quit  leave (or end of input)\n" +
                                    "//text  send a message that starts with '/'\na line ending in \\ continues on the next line; Ctrl-C cancels a reply, at the prompt it quits";

    public static Command Create()
    {
        var common = new CommonOptions();
        var sampling = new SamplingCliOptions();
        var system = new Option<string?>("--system") { Description = "Instructions folded into the first user turn." };
        var command = new Command("chat", "Chat interactively (/help, /reset, /exit; end a line with \\ to continue it; Ctrl-C cancels a reply).");
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
            if (interactive) Console.Error.WriteLine("gemma chat — /help for commands, /exit to quit, end a line with \\ to continue it.");
            int failed = 0;
            while (true)
            {
                if (interactive) Console.Error.Write("> ");
                string? message = ReadMessageOrQuitOnCtrlC();
                if (message == null) break;
                string trimmed = message.Trim();
                if (IsCommand(trimmed)) trimmed = trimmed.ToLowerInvariant();
                if (trimmed.Length == 0) continue;
                if (IsCommand(trimmed))
                {
                    if (trimmed is "/exit" or "/quit") break;
                    if (trimmed == "/reset")
                    {
                        session.Reset();
                        Console.Error.WriteLine("(conversation reset)");
                    }
                    else if (trimmed == "/help") Console.Error.WriteLine(Commands);
                    else Console.Error.WriteLine($"gemma: unknown command {trimmed}; /help lists the commands (start with // to send a message beginning with /).");
                    continue;
                }
                if (trimmed.StartsWith("//", StringComparison.Ordinal)) message = message[(message.IndexOf('/') + 1)..];

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
                    Console.Error.WriteLine($"gemma: error: {e.Message}");
                    failed++;
                    continue;
                }
                Console.Out.WriteLine();
                if (session.LastStats is { } stats) Stats.Print(stats);
                if (ct.IsCancellationRequested) return ExitCodes.Cancelled;
            }
            if (failed > 0)
            {
                Console.Error.WriteLine($"gemma: {failed} turn{(failed == 1 ? "" : "s")} failed.");
                return ExitCodes.BadInput;
            }
            return ExitCodes.Success;
        })));
        return command;
    }

    /// <summary>A single word made of a slash and letters (so "/etc/fstab とは" is a message, not a command).</summary>
    private static bool IsCommand(string line) => line.Length > 1 && line[0] == '/' && line.Skip(1).All(char.IsAsciiLetter);

    /// <summary>
    /// The next message, or null at end of input. Ctrl-C while waiting here ends the process with 130 after a newline
    /// (the runtime would otherwise die by the signal); during a reply <see cref="ConsoleCancellation"/> cancels only
    /// the reply.
    /// </summary>
    private static string? ReadMessageOrQuitOnCtrlC()
    {
        ConsoleCancelEventHandler quit = (_, e) =>
        {
            e.Cancel = true;
            Console.Error.WriteLine();
            Console.Error.WriteLine("gemma: cancelled.");
            Console.Out.Flush();
            Environment.Exit(ExitCodes.Cancelled);
        };
        Console.CancelKeyPress += quit;
        try
        {
            return ReadMessage();
        }
        finally
        {
            Console.CancelKeyPress -= quit;
        }
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
