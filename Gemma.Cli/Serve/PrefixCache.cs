using Gemma.Core;
using Gemma.Core.Model;

namespace Gemma.Cli.Serve;

/// <summary>One KV cache and the ids whose keys/values it holds, in order.</summary>
internal sealed class CacheEntry(KvCache cache)
{
    public KvCache Cache { get; } = cache;
    /// <summary>Sized for a full context up front: appending while decoding never grows it.</summary>
    public List<int> Ids { get; } = new(cache.ContextLength);
    public bool InUse { get; set; }
    public long LastUsed { get; set; }

    /// <summary>Forgets everything after the first <paramref name="length"/> ids.</summary>
    public void Truncate(int length)
    {
        if (length == 0) Cache.Clear(); // always allowed: nothing of the old contents is read again
        else Cache.Truncate(length);
        Ids.RemoveRange(length, Ids.Count - length);
    }
}

/// <summary>
/// A fixed set of KV caches, more than there are slots: a finished request leaves its cache (prompt + reply) behind
/// as a cached prefix, and a new request takes the idle cache sharing the longest token prefix with its prompt
/// (least recently used when none shares any). Only the scheduler thread touches it.
/// </summary>
/// <remarks>
/// Sliding-window layers keep a ring of <c>window + slack</c> positions. A prefix of length L stays usable only while
/// the positions a query at L still sees (L − window + 1 …) have not been overwritten, which
/// <see cref="KvCache.CanTruncateTo"/> checks; when it says no the prefix is recomputed instead (never a wrong answer).
/// The slack (<see cref="ServerOptions.ReuseSlack"/>) is how many positions past a prefix (the reply and the next
/// turn's text) may be written before that prefix is lost.
/// </remarks>
internal sealed class PrefixCache : IDisposable
{
    private readonly CacheEntry[] _entries;
    private long _clock;

    public PrefixCache(GemmaModel model, int entries, int contextLength, int chunk, int reuseSlack)
    {
        _entries = new CacheEntry[entries];
        for (int i = 0; i < entries; i++)
            _entries[i] = new CacheEntry(new KvCache(model.Config, contextLength, chunk + reuseSlack));
    }

    public int Count => _entries.Length;

    /// <summary>
    /// Takes the idle entry whose ids share the longest reusable prefix with <paramref name="prompt"/>, truncated to that
    /// prefix (at most prompt − 1 ids, so the last prompt token is always run and gives the first logits).
    /// Returns null when every entry is in use.
    /// </summary>
    public CacheEntry? Acquire(IReadOnlyList<int> prompt, out int reused)
    {
        CacheEntry? best = null;
        reused = 0;
        foreach (CacheEntry e in _entries)
        {
            if (e.InUse) continue;
            int common = ReusableLength(e, prompt);
            if (best == null || common > reused || (common == reused && e.LastUsed < best.LastUsed))
            {
                best = e;
                reused = common;
            }
        }
        if (best == null) return null;
        best.Truncate(reused);
        best.InUse = true;
        best.LastUsed = ++_clock;
        return best;
    }

    /// <summary>Returns an entry; its ids stay as a cached prefix for later requests.</summary>
    public void Release(CacheEntry entry)
    {
        entry.InUse = false;
        entry.LastUsed = ++_clock;
    }

    /// <summary>Common prefix of the entry and the prompt that the cache can still be cut back to.</summary>
    internal static int ReusableLength(CacheEntry e, IReadOnlyList<int> prompt)
    {
        int common = 0, limit = Math.Min(e.Ids.Count, prompt.Count - 1);
        while (common < limit && e.Ids[common] == prompt[common]) common++;
        // CanTruncateTo is monotonic in the length (a longer prefix needs older slots less), so when the longest common
        // prefix is lost every shorter one is too: start from scratch.
        return e.Cache.CanTruncateTo(common) ? common : 0;
    }

    public void Dispose()
    {
        foreach (CacheEntry e in _entries) e.Cache.Dispose();
    }
}
