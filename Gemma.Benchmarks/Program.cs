using BenchmarkDotNet.Running;

namespace Gemma.Benchmarks;

internal static class Program
{
    // dotnet run -c Release --project Gemma.Benchmarks -- --filter '*'
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
