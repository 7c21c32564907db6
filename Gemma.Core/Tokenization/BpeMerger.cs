using System.Buffers;
using System.Diagnostics;
using System.Text;

namespace Gemma.Core.Tokenization;

/// <summary>
/// The BPE core: turns one normalized segment (spaces already replaced by '▁', no added tokens inside) into ids.
/// It is a transcription of Hugging Face tokenizers' <c>BPE::merge_word</c> + <c>Word::merge_all</c>, because
/// exact ids are the bar: the initial symbols are Unicode scalars (byte-fallback pieces for scalars missing from
/// the vocabulary, <c>&lt;unk&gt;</c> fused when even those are missing), then the pair with the lowest merge rank is
/// merged first, the leftmost one on ties, until no adjacent pair has a merge. A binary heap keeps this
/// O(n log n) on a segment of n symbols, so a megabyte with no separator stays fast.
/// </summary>
internal sealed class BpeMerger
{
    /// <summary>(left id, right id) packed as <c>left &lt;&lt; 32 | right</c> -> (rank, merged id) packed the same way.</summary>
    private readonly Dictionary<long, long> _merges;
    private readonly int[] _bmpIds;            // (65536) id of each single BMP character piece, or -1
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocab;
    private readonly int[] _byteIds;           // (256) id of the piece <0xXX>, or -1
    private readonly int _unknownId;           // -1 when the vocabulary has none
    private readonly bool _byteFallback;
    private readonly bool _fuseUnknown;

    public BpeMerger(Dictionary<string, int> vocab, Dictionary<long, long> merges, int[] byteIds, int unknownId,
        bool byteFallback, bool fuseUnknown)
    {
        _merges = merges;
        _vocab = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _byteIds = byteIds;
        _unknownId = unknownId;
        _byteFallback = byteFallback;
        _fuseUnknown = fuseUnknown;
        _bmpIds = new int[65536];
        Array.Fill(_bmpIds, -1);
        foreach (var (piece, id) in vocab)
        {
            if (piece.Length == 1 && !char.IsSurrogate(piece[0])) _bmpIds[piece[0]] = id;
        }
    }

    /// <summary>Number of merge rules.</summary>
    public int MergeCount => _merges.Count;

    public static long Pack(int high, int low) => ((long)high << 32) | (uint)low;

    /// <summary>A merge table keyed by packed id pairs, with a hash that mixes both halves.</summary>
    public static Dictionary<long, long> CreateMergeTable(int capacity) => new(capacity, PairComparer.Instance);

    /// <summary>
    /// <c>long.GetHashCode</c> is <c>low ^ high</c>: for (left, right) id pairs below 2^18 that folds 580k merges onto
    /// a few hundred thousand colliding buckets and made loading take seconds. Fibonacci hashing spreads them.
    /// </summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    /// <summary>Appends the ids of one normalized segment to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<char> segment, List<int> output)
    {
        if (segment.IsEmpty) return;
        int[] ids = ArrayPool<int>.Shared.Rent(segment.Length * 4); // a scalar yields at most 4 byte pieces
        try
        {
            int count = InitialSymbols(segment, ids);
            if (count > 1) count = MergeAll(ids, count);
            for (int i = 0; i < count; i++) output.Add(ids[i]);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(ids);
        }
    }

    /// <summary><c>merge_word</c>: one symbol per scalar, byte fallback, unknowns fused.</summary>
    private int InitialSymbols(ReadOnlySpan<char> s, int[] ids)
    {
        int count = 0;
        bool pendingUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < s.Length;)
        {
            // Lone surrogates were replaced by U+FFFD at the public boundary, so a high surrogate here has its pair.
            int width = char.IsHighSurrogate(s[i]) && i + 1 < s.Length ? 2 : 1;
            int id = width == 1 ? _bmpIds[s[i]] : Lookup(s.Slice(i, 2));
            if (id >= 0)
            {
                if (pendingUnknown) { ids[count++] = _unknownId; pendingUnknown = false; }
                ids[count++] = id;
            }
            else if (_byteFallback && TryBytes(s.Slice(i, width), utf8, out int n))
            {
                // HF pushes the byte pieces without first flushing a pending <unk>: kept for exactness.
                for (int b = 0; b < n; b++) ids[count++] = _byteIds[utf8[b]];
            }
            else if (_unknownId >= 0)
            {
                if (pendingUnknown && !_fuseUnknown) ids[count++] = _unknownId;
                pendingUnknown = true;
            }
            i += width;
        }
        if (pendingUnknown) ids[count++] = _unknownId;
        return count;
    }

    /// <summary>True when a scalar becomes &lt;unk&gt;: not a piece, and byte fallback cannot spell it.</summary>
    public bool IsUnknown(ReadOnlySpan<char> scalar)
    {
        int id = scalar.Length == 1 ? _bmpIds[scalar[0]] : Lookup(scalar);
        Span<byte> utf8 = stackalloc byte[8];
        return id < 0 && !(_byteFallback && TryBytes(scalar, utf8, out _));
    }

    private int Lookup(ReadOnlySpan<char> piece) => _vocab.TryGetValue(piece, out int id) ? id : -1;

    private bool TryBytes(ReadOnlySpan<char> scalar, Span<byte> utf8, out int n)
    {
        n = Encoding.UTF8.GetBytes(scalar, utf8);
        for (int b = 0; b < n; b++)
        {
            if (_byteIds[utf8[b]] < 0) return false;
        }
        return true;
    }

    /// <summary><c>Word::merge_all</c> over a doubly linked list of symbols; returns the new symbol count.</summary>
    private int MergeAll(int[] ids, int count)
    {
        int[] prev = ArrayPool<int>.Shared.Rent(count);
        int[] next = ArrayPool<int>.Shared.Rent(count);
        var queue = new PriorityQueue<(int Pos, int MergedId), long>(count); // priority: rank << 32 | position
        try
        {
            for (int i = 0; i < count; i++)
            {
                prev[i] = i - 1;
                next[i] = i + 1 < count ? i + 1 : -1;
                if (i + 1 < count && _merges.TryGetValue(Pack(ids[i], ids[i + 1]), out long m))
                    queue.Enqueue((i, (int)m), Pack((int)(m >> 32), i));
            }

            while (queue.TryDequeue(out var top, out _))
            {
                int pos = top.Pos;
                if (ids[pos] < 0) continue;          // merged into its left neighbour
                int right = next[pos];
                if (right < 0) continue;              // last symbol
                // A stale entry: the pair at pos changed since it was queued (HF compares the merged id only).
                if (!_merges.TryGetValue(Pack(ids[pos], ids[right]), out long m) || (int)m != top.MergedId)
                    continue;
                ids[pos] = (int)m;
                ids[right] = -1;
                next[pos] = next[right];
                if (next[right] >= 0) prev[next[right]] = pos;

                if (prev[pos] >= 0 && _merges.TryGetValue(Pack(ids[prev[pos]], ids[pos]), out long left))
                    queue.Enqueue((prev[pos], (int)left), Pack((int)(left >> 32), prev[pos]));
                if (next[pos] >= 0 && _merges.TryGetValue(Pack(ids[pos], ids[next[pos]]), out long after))
                    queue.Enqueue((pos, (int)after), Pack((int)(after >> 32), pos));
            }

            int kept = 0;
            for (int i = 0; i >= 0; i = next[i]) ids[kept++] = ids[i];
            Debug.Assert(kept <= count);
            return kept;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(prev);
            ArrayPool<int>.Shared.Return(next);
        }
    }
}
