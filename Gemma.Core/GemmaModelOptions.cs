namespace Gemma.Core;

/// <summary>How a model is loaded and run.</summary>
public sealed record GemmaModelOptions
{
    /// <summary>
    /// Worker threads for the kernels; default: <see cref="Environment.ProcessorCount"/>. A larger value is capped to
    /// it when the model loads (<see cref="GemmaModel.Options"/> shows the count used): the workers spin and wait for
    /// each other at every step, so more threads than cores only adds switching (1,000 threads on 2 cores ran 3×
    /// slower).
    /// </summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Context length of new inference contexts; default min(max_position_embeddings, 8192).</summary>
    public int? ContextLength { get; init; }

    /// <summary>Tokens per prefill chunk (matrix × matrix batch); longer prompts are processed in several chunks.</summary>
    public int PrefillChunk { get; init; } = 128;

    /// <summary>
    /// How inference contexts store keys and values: <see cref="KvCacheType.Float32"/> (default, exact) or
    /// <see cref="KvCacheType.Float16"/> (half the memory and attention traffic, small logit error — see the enum).
    /// </summary>
    public KvCacheType KvCache { get; init; } = KvCacheType.Float32;

    /// <summary>
    /// True (default): weights are read in place from a read-only memory mapping of the file — instant load, pages
    /// shared with other processes through the page cache. False (like llama.cpp's <c>--no-mmap</c>): the file is copied
    /// into private anonymous memory aligned to 2 MiB and, on Linux, advised <c>MADV_HUGEPAGE</c> (backed by transparent
    /// huge pages when <c>/sys/kernel/mm/transparent_hugepage/enabled</c> is <c>madvise</c> or <c>always</c>), then
    /// unmapped: load reads the whole file and the weights count fully in this process's memory. The embedded demo
    /// model is always used in place. See docs/performance.md for the measured effect.
    /// </summary>
    public bool MemoryMap { get; init; } = true;

    /// <summary>These options with <see cref="Threads"/> capped to the cores this process may use.</summary>
    internal GemmaModelOptions CappedToCores() => Threads > Environment.ProcessorCount ? this with { Threads = Environment.ProcessorCount } : this;

    internal void Validate()
    {
        if (!Enum.IsDefined(KvCache)) throw new GemmaException($"Unknown KV cache type {KvCache}.");
        if (Threads < 1) throw new GemmaException($"Threads must be at least 1, got {Threads}.");
        if (ContextLength is < 1) throw new GemmaException($"Context length must be at least 1, got {ContextLength}.");
        if (PrefillChunk is < 1 or > 4096) throw new GemmaException($"Prefill chunk must be in [1, 4096], got {PrefillChunk}.");
    }
}
