using BenchmarkDotNet.Running;
using Gemma.Benchmarks.Peer;

namespace Gemma.Benchmarks;

internal static class Program
{
    // dotnet run -c Release --project Gemma.Benchmarks -- --filter '*'            (BenchmarkDotNet kernels)
    // dotnet run -c Release --project Gemma.Benchmarks -- peer --model F.gguf      (end-to-end vs llama.cpp)
    // dotnet run -c Release --project Gemma.Benchmarks -- logits-check | quality | quantize-check   (demo model vs llama.cpp)
    // dotnet run -c Release --project Gemma.Benchmarks -- linear-quick CASES         (best-of-N matmul timings)
    // dotnet run -c Release --project Gemma.Benchmarks -- attention-quick --position 4000   (one decode token's attention)
    // dotnet run -c Release --project Gemma.Benchmarks -- batch-step -m M.gguf      (one batched decode step: matmuls vs the rest, n = 1/2/4/8)
    // dotnet run -c Release --project Gemma.Benchmarks -- constraint-trace [N]      (mask time over N generations, 256k vocab)
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "linear-quick") return Kernels.LinearQuickCommand.Run(args[1..]);
        if (args.Length > 0 && args[0] == "attention-quick") return Kernels.AttentionQuickCommand.Run(args[1..]);
        if (args.Length > 0 && args[0] == "batch-step") return BatchStepCommand.Run(args[1..]);
        if (args.Length > 0 && args[0] == "constraint-trace") return ConstraintTrace.Run(args[1..]);
        if (args.Length > 0 && args[0] is "peer" or "peer-child" or "logits-check" or "quality" or "quantize-check")
        {
            try
            {
                var a = new PeerArgs(args.Skip(1));
                return args[0] switch
                {
                    "peer" => PeerCommand.RunParent(a),
                    "peer-child" => PeerCommand.RunChild(a),
                    "logits-check" => LogitsCheckCommand.Run(a),
                    "quantize-check" => QuantizeCheckCommand.Run(a),
                    _ => QualityCommand.Run(a),
                };
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
