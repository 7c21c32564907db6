using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary>Runs a command body and turns our exceptions into a message on stderr and an exit code.</summary>
internal static class CliRunner
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (GemmaException e)
        {
            Console.Error.WriteLine($"gemma: error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"gemma: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("gemma: cancelled.");
            return ExitCodes.Cancelled;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"gemma: error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }
}

/// <summary>A command-line mistake found after parsing (e.g. a malformed id list).</summary>
internal sealed class UsageException(string message) : Exception(message);
