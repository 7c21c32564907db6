using System.CommandLine;
using System.Text;
using Gemma.Cli.Commands;

namespace Gemma.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        Console.InputEncoding = new UTF8Encoding(false);
        RootCommand root = CreateRoot();
        // No response files: "@admin さん" is a prompt, not a file of arguments.
        ParseResult parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0) return ReportParseErrors(parse);
        return parse.Invoke();
    }

    internal static RootCommand CreateRoot() => new("gemma — run Google's Gemma models on the CPU, pure .NET.")
    {
        GenerateCommand.Create(),
        ChatCommand.Create(),
        LogitsCommand.Create(),
        InfoCommand.Create(),
        SynthCommand.Create(),
        BenchCommand.Create(),
        QuantizeCommand.Create(),
        TokenizeCommand.Create(),
        BundleCommand.Create(),
        ServeCommand.Create(),
        ServeBenchCommand.Create(),
    };

    /// <summary>Parse errors: one short line each and a pointer to the help on stderr (not the whole help on stdout).</summary>
    private static int ReportParseErrors(ParseResult parse)
    {
        foreach (var error in parse.Errors) Console.Error.WriteLine($"gemma: {error.Message}");
        string command = string.Join(' ', CommandPath(parse));
        Console.Error.WriteLine($"Run '{command} --help' for usage.");
        return ExitCodes.Usage;
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new Stack<string>();
        for (var result = parse.CommandResult; result != null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Push(result.Command is RootCommand ? "gemma" : result.Command.Name);
        return names;
    }
}
