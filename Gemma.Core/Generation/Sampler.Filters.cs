namespace Gemma.Core.Generation;

// The truncation filters: top-k, min-p and their dispatch (top-p is in Sampler.Nucleus.cs). Candidates are kept as
// packed 64-bit keys (see Pack) whose plain integer order is "higher logit first, lower id first on ties", so
// selection, sorting and tie-breaking are integer operations and every result is a deterministic function of the logits.
public sealed partial class Sampler
{
    /// <summary>
    /// Packs a logit and its id into a key whose unsigned order is (logit descending, id ascending). The float bits
    /// are mapped to an order-preserving unsigned integer (negative: flip all bits; positive: set the sign bit),
    /// then complemented so that larger logits give smaller keys.
    /// </summary>
    internal static ulong Pack(float logit, int id)
    {
        if (logit == 0f) logit = 0f;  // −0 and +0 are equal logits: one key, so the tie goes to the lower id
        uint bits = BitConverter.SingleToUInt32Bits(logit);
        uint ascending = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ((ulong)~ascending << 32) | (uint)id;
    }

    /// <summary>The token id of a packed key.</summary>
    internal static int Id(ulong key) => (int)(uint)key;

    /// <summary>Applies top-k, top-p and min-p; returns the surviving candidates (at least one) in <c>_keys</c>.</summary>
    internal ReadOnlySpan<ulong> SelectCandidates(ReadOnlySpan<float> work)
    {
        Span<ulong> keys = _keys;
        int count;
        bool sorted;
        if (_topK > 0 && _topK < _vocab)
        {
            count = SelectBest(work, keys.Slice(0, _topK), out _);
            sorted = true;
            if (count > 0 && _topP < 1f) count = NucleusOfAll(work, keys.Slice(0, count));
        }
        else if (_topP < 1f) count = SelectNucleus(work, keys, out sorted);
        else
        {
            count = 0;
            for (int i = 0; i < work.Length; i++)
                if (work[i] > float.NegativeInfinity) keys[count++] = Pack(work[i], i);
            sorted = false;
        }
        if (count == 0) throw NoCandidate();
        if (_minP > 0f) count = ApplyMinP(work, keys.Slice(0, count), sorted);
        return keys.Slice(0, count);
    }

    /// <summary>
    /// Writes the best <c>best.Length</c> tokens (NaN and −∞ skipped) into <paramref name="best"/>, best first, and
    /// returns how many there were; <paramref name="valid"/> receives the number of tokens that are not NaN or −∞.
    /// A max-heap of the kept keys: once it is full one float comparison rejects almost every token; expected
    /// O(V + k log k · log(V/k)), no sort of the vocabulary.
    /// </summary>
    private static int SelectBest(ReadOnlySpan<float> work, Span<ulong> best, out int valid)
    {
        int k = best.Length, count = 0;
        valid = 0;
        float threshold = float.NegativeInfinity;  // logit of the worst kept key once the heap is full
        for (int i = 0; i < work.Length; i++)
        {
            float logit = work[i];
            if (!(logit > float.NegativeInfinity)) continue;  // NaN or −∞
            valid++;
            if (count == k)
            {
                // Tokens come in id order, so one whose logit equals the worst kept one has a larger id: it loses the tie.
                if (logit <= threshold) continue;
                best[0] = Pack(logit, i);
                SiftDown(best, 0);
                threshold = WorkLogit(work, best[0]);
            }
            else
            {
                best[count] = Pack(logit, i);
                SiftUp(best, count++);
                if (count == k) threshold = WorkLogit(work, best[0]);
            }
        }
        best.Slice(0, count).Sort();
        return count;
    }

    private static float WorkLogit(ReadOnlySpan<float> work, ulong key) => work[Id(key)];

    private static void SiftUp(Span<ulong> heap, int i)
    {
        ulong key = heap[i];
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (heap[parent] >= key) break;
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = key;
    }

    private static void SiftDown(Span<ulong> heap, int i)
    {
        ulong key = heap[i];
        int n = heap.Length;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && heap[child + 1] > heap[child]) child++;
            if (heap[child] <= key) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = key;
    }

    /// <summary>
    /// llama.cpp's min-p: keeps the candidates whose probability is at least min-p × the largest (at temperature 1),
    /// i.e. <c>exp(logit − max) ≥ min-p</c> (llama.cpp writes it <c>logit ≥ max + ln min-p</c>; this form needs no
    /// platform log). Keeps the order; returns the new count (the best token always stays).
    /// </summary>
    private int ApplyMinP(ReadOnlySpan<float> work, Span<ulong> keys, bool sorted)
    {
        float max = float.NegativeInfinity;
        if (sorted) max = work[Id(keys[0])];
        else foreach (ulong key in keys) max = MathF.Max(max, work[Id(key)]);

        int kept = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (Weight(work[Id(keys[i])], max, 1.0) >= _minP) keys[kept++] = keys[i];  // +∞ max: only +∞ tokens weigh 1
            else if (sorted) break;
        }
        return kept;
    }
}
