using Gemma.Core.Formats.Gguf;
using LLama;
using LLama.Native;

namespace Gemma.Benchmarks.Peer;

/// <summary>
/// <c>quantize-check [--type q4_k_m|q4_0|q6_k] [--dir DIR]</c>: our <c>gemma quantize</c> against llama.cpp's own
/// <c>llama_model_quantize</c> on the demo model. llama.cpp quantizes our bf16 GGUF; our converter writes the same type
/// from the Hugging Face folder; every tensor must have the same ggml type and the same bytes (the mixing rules and the
/// quantizers, end to end).
/// </summary>
internal static class QuantizeCheckCommand
{
    public static int Run(PeerArgs a)
    {
        string label = (a.String("type") ?? "q4_k_m").ToLowerInvariant();
        (GgufOutputType ours, LLamaFtype theirs) = label switch
        {
            "q4_k_m" => (GgufOutputType.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M),
            "q4_0" => (GgufOutputType.Q4_0, LLamaFtype.MOSTLY_Q4_0),
            "q6_k" => (GgufOutputType.Q6_K, LLamaFtype.MOSTLY_Q6_K),
            _ => throw new ArgumentException("--type must be q4_k_m, q4_0 or q6_k"),
        };
        string dir = a.String("dir") ?? Path.Combine(Path.GetTempPath(), "gemma-peer");
        (string bf16, string ourFile) = DemoModel.WriteGgufFiles(dir, ours);
        string llamaFile = Path.Combine(dir, $"demo-{label}-llama.cpp.gguf");
        NativeApi.llama_empty_call(); // loads the native library (LLamaSharp's resolver) before the quantize call
        if (!LLamaQuantizer.Quantize(bf16, llamaFile, theirs, nthread: 1, allowRequantize: true, quantizeOutputTensor: true))
            throw new InvalidOperationException("llama_model_quantize failed");
        using GgufFile mine = GgufFile.Open(ourFile), reference = GgufFile.Open(llamaFile);
        int same = 0, differ = 0;
        foreach (GgufTensorInfo t in reference.Tensors)
        {
            GgufTensorInfo? m = mine.TryGetTensor(t.Name, out GgufTensorInfo? found) ? found : null;
            string verdict;
            if (m is null) verdict = "missing in ours";
            else if (m.Type != t.Type) verdict = $"type {m.Type} (ours) vs {t.Type} (llama.cpp)";
            else if (!m.GetData().SequenceEqual(t.GetData())) verdict = $"{t.Type}: bytes differ";
            else { same++; continue; }
            differ++;
            Console.WriteLine($"{t.Name}: {verdict}");
        }
        Console.WriteLine($"{label}: {same} of {reference.Tensors.Count} tensors identical to llama.cpp's ({differ} differ); " +
                          $"files {new FileInfo(ourFile).Length} vs {new FileInfo(llamaFile).Length} bytes");
        return differ == 0 ? 0 : 2;
    }
}
