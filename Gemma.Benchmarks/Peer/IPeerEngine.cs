namespace Gemma.Benchmarks.Peer;

/// <summary>
/// One inference engine seen at the token level, the common ground of the peer modes: a prefill that may return the
/// logits of every position, and a single-token decode through the engine's own KV cache.
/// </summary>
internal interface IPeerEngine : IDisposable
{
    /// <summary>"ours" or "llama.cpp".</summary>
    string Name { get; }

    int VocabSize { get; }

    /// <summary>Forgets every position (empties the KV cache).</summary>
    void Reset();

    /// <summary>
    /// Appends <paramref name="tokens"/>; when <paramref name="allLogits"/> is not empty it receives the logits of every
    /// token (<c>[tokens, vocab]</c>). Returns the logits of the last token, valid until the next call.
    /// </summary>
    ReadOnlySpan<float> Prefill(ReadOnlySpan<int> tokens, Span<float> allLogits);

    /// <summary>Appends one token and returns its logits, valid until the next call.</summary>
    ReadOnlySpan<float> Decode(int token);
}

internal static class PeerEngines
{
    public const string Ours = "ours";
    public const string LlamaCpp = "llamacpp";

    /// <summary>Opens <paramref name="model"/> (a GGUF file; ours also takes an HF folder) with engine <paramref name="name"/>.</summary>
    public static IPeerEngine Open(string name, string model, int threads, int contextLength) => name switch
    {
        Ours => new OursEngine(model, threads, contextLength),
        LlamaCpp => new LlamaCppEngine(model, threads, contextLength),
        _ => throw new ArgumentException($"unknown engine '{name}' (ours or llamacpp)"),
    };

    public static string DisplayName(string name) => name == LlamaCpp ? "llama.cpp" : name;
}
