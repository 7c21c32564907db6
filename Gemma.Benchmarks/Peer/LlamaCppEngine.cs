using LLama;
using LLama.Common;
using LLama.Native;

namespace Gemma.Benchmarks.Peer;

/// <summary>
/// llama.cpp through LLamaSharp (the prebuilt CPU backend of LLamaSharp.Backend.Cpu), weights memory-mapped like ours.
/// Prefill sends the tokens as batches of at most <see cref="MaxBatch"/> (llama-bench's default n_batch/n_ubatch);
/// decode sends one token per batch.
/// </summary>
internal sealed class LlamaCppEngine : IPeerEngine
{
    /// <summary>Tokens per llama_decode call (n_batch = n_ubatch = 512, llama-bench's defaults).</summary>
    public const int MaxBatch = 512;

    private static int s_logConfigured;
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();
    private int _position;

    public LlamaCppEngine(string path, int threads, int contextLength)
    {
        QuietNativeLog();
        var parameters = new ModelParams(path)
        {
            ContextSize = (uint)contextLength,
            Threads = threads,
            BatchThreads = threads,
            BatchSize = MaxBatch,
            UBatchSize = MaxBatch,
            GpuLayerCount = 0,
            LoadMode = LLamaLoadMode.MemoryMap,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = new LLamaContext(_weights, parameters);
        VocabSize = _weights.Vocab.Count;
    }

    public string Name => PeerEngines.LlamaCpp;

    public int VocabSize { get; }

    /// <summary>Only errors from the native side reach stderr (llama.cpp logs every tensor at load otherwise).</summary>
    private static void QuietNativeLog()
    {
        if (Interlocked.Exchange(ref s_logConfigured, 1) != 0) return;
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
        });
    }

    /// <summary>Which native build was loaded (path of libllama from /proc/self/maps) and ggml's CPU feature line.</summary>
    public static string NativeDescription()
    {
        string library = "?";
        try
        {
            library = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1])
                .FirstOrDefault(p => p.EndsWith("/libllama.so", StringComparison.Ordinal)) ?? "?";
        }
        catch (IOException) { }
        string info = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info()) ?? "";
        return $"{library}; {info.Trim()}";
    }

    public void Reset()
    {
        _context.NativeHandle.MemoryClear(true);
        _position = 0;
    }

    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> tokens, Span<float> allLogits)
    {
        if (tokens.IsEmpty) throw new ArgumentException("Prefill needs at least one token.", nameof(tokens));
        int vocab = VocabSize;
        if (!allLogits.IsEmpty && allLogits.Length < (long)tokens.Length * vocab)
            throw new ArgumentException($"allLogits must hold {tokens.Length}×{vocab} floats.", nameof(allLogits));
        int last = -1;
        for (int start = 0; start < tokens.Length; start += MaxBatch)
        {
            int n = Math.Min(MaxBatch, tokens.Length - start);
            _batch.Clear();
            for (int i = 0; i < n; i++)
            {
                bool isLast = start + i == tokens.Length - 1;
                last = _batch.Add(tokens[start + i], _position + i, LLamaSeqId.Zero, logits: isLast || !allLogits.IsEmpty);
            }
            Run(n);
            if (!allLogits.IsEmpty)
                for (int i = 0; i < n; i++)
                    _context.NativeHandle.GetLogitsIth(i).CopyTo(allLogits.Slice((start + i) * vocab, vocab));
        }
        return _context.NativeHandle.GetLogitsIth(last);
    }

    public ReadOnlySpan<float> Decode(int token)
    {
        _batch.Clear();
        int index = _batch.Add(token, _position, LLamaSeqId.Zero, logits: true);
        Run(1);
        return _context.NativeHandle.GetLogitsIth(index);
    }

    private void Run(int n)
    {
        DecodeResult result = _context.Decode(_batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode failed: {result} at position {_position}.");
        _position += n;
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
