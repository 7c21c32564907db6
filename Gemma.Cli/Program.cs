namespace Gemma.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        Console.WriteLine("gemma");
        return 0;
    }
}
