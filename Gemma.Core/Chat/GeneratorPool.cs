using Gemma.Core.Generation;

namespace Gemma.Core.Chat;

/// <summary>
/// At most <c>capacity</c> <see cref="TextGenerator"/>s (each with its own KV cache), lent out one call at a time.
/// A generator remembers the conversation id of its last call. Choice on <see cref="RentAsync"/>, among idle generators:
/// <list type="number">
/// <item>the one keyed by the call's conversation id;</item>
/// <item>else the unkeyed one that can keep the longest prefix (&gt; 0) of the prompt in its cache
/// (<see cref="TextGenerator.KeepablePrefix"/>: shared ids whose sliding-window slots are still intact);</item>
/// <item>else a new one, while there are fewer than <c>capacity</c>;</item>
/// <item>else the least recently used (unkeyed first): its cache is overwritten.</item>
/// </list>
/// Any choice is correct — <see cref="TextGenerator"/> reuses only the prefix that matches — the order only decides how
/// much prefill is saved. A second concurrent call with a busy conversation id gets another generator (it does not
/// wait for the first, so two interleaved streams of one conversation cannot deadlock); when both end, the one that
/// ended last keeps the id.
/// </summary>
internal sealed class GeneratorPool : IDisposable
{
    internal sealed class Entry(TextGenerator generator)
    {
        public TextGenerator Generator { get; } = generator;
        public string? ConversationId;
        public bool Busy;
        public long LastUsed;
    }

    private readonly Func<TextGenerator> _create;
    private readonly SemaphoreSlim _slots;
    private readonly List<Entry> _entries = new();
    private readonly object _lock = new();
    private long _clock;
    private bool _disposed;

    public GeneratorPool(int capacity, Func<TextGenerator> create)
    {
        Capacity = capacity;
        _create = create;
        _slots = new SemaphoreSlim(capacity, capacity);
    }

    public int Capacity { get; }

    /// <summary>Generators created so far (idle or busy).</summary>
    public int Count { get { lock (_lock) return _entries.Count; } }

    /// <summary>Waits for a free slot, then lends the best generator for this call (see the class remarks).</summary>
    public async Task<Entry> RentAsync(string? conversationId, IReadOnlyList<int> prompt, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            Entry entry = Choose(conversationId, prompt);
            entry.Busy = true;
            return entry;
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    /// <summary>Returns a generator; it becomes the one kept for <paramref name="conversationId"/> (if any).</summary>
    public void Return(Entry entry, string? conversationId)
    {
        bool dispose;
        lock (_lock)
        {
            entry.Busy = false;
            entry.LastUsed = ++_clock;
            if (conversationId is not null)
            {
                foreach (Entry other in _entries)
                    if (other != entry && other.ConversationId == conversationId) other.ConversationId = null;
            }
            entry.ConversationId = conversationId;
            dispose = _disposed;
            if (dispose) _entries.Remove(entry);
        }
        if (dispose) entry.Generator.Dispose();
        _slots.Release(); // after Dispose this wakes a waiting call, which then fails with ObjectDisposedException
    }

    private Entry Choose(string? conversationId, IReadOnlyList<int> prompt)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (conversationId is not null)
            {
                foreach (Entry e in _entries)
                    if (!e.Busy && e.ConversationId == conversationId) return e;
            }
            Entry? best = null;
            int bestCommon = 0;
            foreach (Entry e in _entries)
            {
                if (e.Busy || e.ConversationId is not null) continue;
                int common = e.Generator.KeepablePrefix(prompt);
                if (common > bestCommon) (best, bestCommon) = (e, common);
            }
            if (best is not null) return best;
            if (_entries.Count < Capacity)
            {
                var created = new Entry(_create());
                _entries.Add(created);
                return created;
            }
            // The semaphore guarantees an idle entry here.
            return _entries.Where(e => !e.Busy)
                .OrderBy(e => e.ConversationId is null ? 0 : 1).ThenBy(e => e.LastUsed).First();
        }
    }

    /// <summary>Disposes idle generators now and busy ones when they are returned.</summary>
    public void Dispose()
    {
        List<Entry> idle;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            idle = _entries.Where(e => !e.Busy).ToList();
            foreach (Entry e in idle) _entries.Remove(e);
        }
        foreach (Entry e in idle) e.Generator.Dispose();
    }
}
