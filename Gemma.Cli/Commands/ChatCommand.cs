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
            using var interrupts = new ChatInterrupts();
            while (true)
            {
                if (interactive) Console.Error.Write("> ");
                string? message = ReadMessage();
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

                CancellationToken replyToken = interrupts.BeginReply(ct);
                try
                {
                    var reply = session.SendAsync(message, options, replyToken).GetAsyncEnumerator(replyToken);
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
                finally
                {
                    interrupts.EndReply();  // from here on, Ctrl-C quits (before anything is printed, so no gap)
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

    /// <summary>
    /// Ctrl-C in a chat, one handler for the whole session so no signal falls between two handlers: during a reply
    /// it cancels only the reply (a second one lets the runtime end the process); anywhere else — at the prompt, or
    /// while the stats of the last reply are printed — it ends the process with 130 after a newline and a message
    /// (the runtime would otherwise die by the signal, without either).
    /// </summary>
    private sealed class ChatInterrupts : IDisposable
    {
        private readonly Lock _gate = new();
        private CancellationTokenSource? _reply;

        public ChatInterrupts() => Console.CancelKeyPress += OnCancelKeyPress;

        public CancellationToken BeginReply(CancellationToken outer)
        {
            lock (_gate)
            {
                _reply = CancellationTokenSource.CreateLinkedTokenSource(outer);
                return _reply.Token;
            }
        }

        public void EndReply()
        {
            lock (_gate)
            {
                _reply?.Dispose();
                _reply = null;
            }
        }

        private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
        {
            lock (_gate)
            {
                if (_reply is { } reply)
                {
                    if (reply.IsCancellationRequested) return;  // second Ctrl-C during a reply: the runtime ends the process
                    e.Cancel = true;
                    reply.Cancel();
                    return;
                }
            }
            e.Cancel = true;
            Console.Error.WriteLine();
            Console.Error.WriteLine("gemma: cancelled.");
            Console.Out.Flush();
            Environment.Exit(ExitCodes.Cancelled);
        }

        public void Dispose()
        {
            Console.CancelKeyPress -= OnCancelKeyPress;
            EndReply();
        }
    }
}
