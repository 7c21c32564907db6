namespace Gemma.Core.Generation;

// Top-p (nucleus) selection. With top-k on, the nucleus is cut from the k sorted survivors. With top-k off it must be
// found among the whole vocabulary without sorting 256 000 keys (~15-40 ms): first among the best FirstNucleusGuess
// tokens (one linear pass; enough for the peaked distributions of a language model), else by a weighted quickselect
// (expected O(V)) that partitions the keys around a pivot and keeps the side where the cumulative mass reaches p.
public sealed partial class Sampler
{
    private const int FirstNucleusGuess = 256;
    private const int SmallRange = 32;  // below this a weighted-select range is simply sorted

    /// <summary>
    /// Top-p without top-k over every valid token. Returns the nucleus size; the nucleus is <c>keys[..count]</c>, sorted
    /// best first when it was found among the first guesses, in partition order otherwise.
    /// </summary>
    private int SelectNucleus(ReadOnlySpan<float> work, Span<ulong> keys, out bool sorted)
    {
        sorted = true;
        int guess = Math.Min(FirstNucleusGuess, _vocab);
        int count = SelectBest(work, keys.Slice(0, guess), out int valid);
        if (count == 0) return 0;
        if (count == valid) return NucleusOfAll(work, keys.Slice(0, count));  // every valid token is in hand

        float max = work[Id(keys[0])];
        double total = SumOfAllWeights(work, max);
        int found = NucleusLength(work, keys.Slice(0, count), max, total);
        if (found > 0) return found;

        sorted = false;
        Span<double> weights = _weights;
        int n = 0;
        for (int i = 0; i < work.Length; i++)
        {
            float logit = work[i];
            if (!(logit > float.NegativeInfinity)) continue;
            keys[n] = Pack(logit, i);
            weights[n++] = Weight(logit, max, 1.0);
        }
        return WeightedSelect(work, keys.Slice(0, n), weights.Slice(0, n), _topP * total, max);
    }

    /// <summary>
    /// Length of the shortest prefix, in key order (logit descending, id ascending), of <paramref name="keys"/> whose
    /// weight reaches <paramref name="need"/>; rearranges <paramref name="keys"/> (and the parallel
    /// <paramref name="weights"/>) so that this prefix comes first. Quickselect with a median-of-three pivot; a range
    /// that stops shrinking fast enough, or is small, is sorted instead, so the worst case stays O(V log V).
    /// </summary>
    private static int WeightedSelect(ReadOnlySpan<float> work, Span<ulong> keys, Span<double> weights, double need, float max)
    {
        int lo = 0, hi = keys.Length;
        int budget = 2 * (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)keys.Length));
        // Invariant: keys[..lo] belong to the nucleus and are better than every key in [lo, hi); need is the mass still
        // missing; the nucleus ends inside [lo, hi].
        while (hi - lo > SmallRange && budget-- > 0)
        {
            int p = Partition(keys, weights, lo, hi, out double better);
            if (better >= need) hi = p;                             // ends among the better keys
            else if (better + weights[p] >= need) return p + 1;     // ends exactly at the pivot
            else { need -= better + weights[p]; lo = p + 1; }      // takes the better keys and the pivot
        }

        // Sort what is left (keys only; weights recomputed from the logits) and walk it.
        Span<ulong> rest = keys.Slice(lo, hi - lo);
        rest.Sort();
        double cumulative = 0;
        for (int i = 0; i < rest.Length; i++)
        {
            cumulative += Weight(work[Id(rest[i])], max, 1.0);
            if (cumulative >= need) return lo + i + 1;
        }
        return hi;  // rounding: the mass of [lo, hi) was ≥ need when it was summed in another order
    }

    /// <summary>
    /// Lomuto partition of [lo, hi) around the median of the first, middle and last keys: afterwards keys before the
    /// returned index are better (smaller), the pivot sits at the index, worse keys follow. Keys are unique (they
    /// contain the id). <paramref name="better"/> receives the total weight of the better keys.
    /// </summary>
    private static int Partition(Span<ulong> keys, Span<double> weights, int lo, int hi, out double better)
    {
        int mid = lo + (hi - lo) / 2, last = hi - 1;
        // Median of three moved to the end.
        if (keys[mid] < keys[lo]) Swap(keys, weights, mid, lo);
        if (keys[last] < keys[lo]) Swap(keys, weights, last, lo);
        if (keys[mid] < keys[last]) Swap(keys, weights, mid, last);
        ulong pivot = keys[last];

        int store = lo;
        better = 0;
        for (int i = lo; i < last; i++)
        {
            if (keys[i] < pivot)
            {
                Swap(keys, weights, i, store);
                better += weights[store];
                store++;
            }
        }
        Swap(keys, weights, store, last);
        return store;
    }

    private static void Swap(Span<ulong> keys, Span<double> weights, int a, int b)
    {
        (keys[a], keys[b]) = (keys[b], keys[a]);
        (weights[a], weights[b]) = (weights[b], weights[a]);
    }

    /// <summary>Top-p over a complete, sorted candidate set (softmax over exactly these); keeps all if rounding never reaches p.</summary>
    private int NucleusOfAll(ReadOnlySpan<float> work, ReadOnlySpan<ulong> sorted)
    {
        float max = work[Id(sorted[0])];
        int n = NucleusLength(work, sorted, max, SumOfWeights(work, sorted, max));
        return n > 0 ? n : sorted.Length;
    }

    /// <summary>
    /// llama.cpp's top-p cut: the length of the shortest prefix of <paramref name="sorted"/> whose probability
    /// (weights over <paramref name="total"/>) reaches top-p; 0 if the prefix given is not long enough.
    /// </summary>
    private int NucleusLength(ReadOnlySpan<float> work, ReadOnlySpan<ulong> sorted, float max, double total)
    {
        double target = _topP * total, cumulative = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            cumulative += Weight(work[Id(sorted[i])], max, 1.0);
            if (cumulative >= target) return i + 1;
        }
        return 0;
    }

    private static double SumOfWeights(ReadOnlySpan<float> work, ReadOnlySpan<ulong> keys, float max)
    {
        double total = 0;
        foreach (ulong key in keys) total += Weight(work[Id(key)], max, 1.0);
        return total;
    }

    private static double SumOfAllWeights(ReadOnlySpan<float> work, float max)
    {
        double total = 0;
        foreach (float logit in work)
            if (logit > float.NegativeInfinity) total += Weight(logit, max, 1.0);
        return total;
    }
}
