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
        var root = new RootCommand("gemma — run Google's Gemma models on the CPU, pure .NET.")
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
        };
        ParseResult parse = root.Parse(args);
        return parse.Invoke();
    }
}
