using System.CommandLine;
using System.Text;

namespace Gemma.Cli.Commands;

/// <summary>
/// Where a prompt comes from: <c>--prompt TEXT</c>, <c>--prompt-file FILE</c> (<c>-</c> = standard input), or standard
/// input when it is redirected and neither is given. Reading is bounded: a prompt longer than <c>maxChars</c> is a
/// usage error found after reading at most that many characters (no unbounded allocation for a huge file or pipe).
/// </summary>
internal sealed class PromptInput
{
    public PromptInput(Option<string?> text) => Text = text;

    /// <summary>The inline option (<c>--prompt</c> for generate, <c>--text</c> for tokenize).</summary>
    public Option<string?> Text { get; }

    public Option<string?> File { get; } = new("--prompt-file", "-f")
    {
        Description = "Read the prompt from FILE (UTF-8; '-' = standard input). Without --prompt or --prompt-file, redirected standard input is read.",
    };

    public void AddTo(Command command)
    {
        command.Add(Text);
        command.Add(File);
    }

    /// <summary>True when the user named a prompt (inline or file); stdin may still supply one.</summary>
    public bool Given(ParseResult parse) => parse.GetValue(Text) != null || parse.GetValue(File) != null;

    /// <summary>
    /// The prompt text, or null when none was given (and standard input is a terminal or empty). Throws a
    /// <see cref="UsageException"/> for both options at once, a missing file, or more than <paramref name="maxChars"/>
    /// characters (<paramref name="why"/> says why that is too many).
    /// </summary>
    public string? Read(ParseResult parse, int maxChars, string why)
    {
        string? text = parse.GetValue(Text), file = parse.GetValue(File);
        if (text != null && file != null) throw new UsageException($"give {Text.Name} or {File.Name}, not both.");
        if (text != null)
        {
            if (text.Length > maxChars) throw TooLong(Text.Name, $"{text.Length:N0}", why);
            return text;
        }
        if (file == "-") return ReadBounded(Console.In, "standard input", maxChars, why);
        if (file == null)
        {
            // Implicit stdin (a pipe or file): empty means no prompt was given, as with a terminal.
            if (!Console.IsInputRedirected) return null;
            string piped = ReadBounded(Console.In, "standard input", maxChars, why);
            return piped.Length > 0 ? piped : null;
        }
        try
        {
            using var reader = new StreamReader(file, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
            return ReadBounded(reader, file, maxChars, why);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            throw new UsageException($"{File.Name} {file}: {e.Message}");
        }
    }

    /// <summary>Reads to the end, or fails once more than <paramref name="maxChars"/> characters arrived.</summary>
    internal static string ReadBounded(TextReader reader, string what, int maxChars, string why)
    {
        var text = new StringBuilder();
        char[] block = new char[64 * 1024];
        int n;
        while ((n = reader.Read(block, 0, block.Length)) > 0)
        {
            if ((long)text.Length + n > maxChars) throw TooLong(what, $"more than {maxChars:N0}", why);
            text.Append(block, 0, n);
        }
        return text.ToString();
    }

    private static UsageException TooLong(string what, string length, string why) =>
        new($"the prompt ({what}) is {length} characters long: {why}.");
}
