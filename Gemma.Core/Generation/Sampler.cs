namespace Gemma.Core.Generation;

/// <summary>
/// Chooses the next token from a row of logits with llama.cpp's default chain:
/// logit bias → repetition/presence/frequency penalties → top-k → top-p → min-p → temperature → draw from the softmax.
/// Temperature 0 or top-k 1 is greedy (argmax; ties → lowest id).
/// </summary>
/// <remarks>
/// <para>Tokens whose logit is NaN or −∞ (after bias and penalties) are never chosen; if no other token is left,
/// <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int})"/> throws <see cref="GemmaException"/>.</para>
/// <para>All buffers are allocated by the constructor (at most 24 bytes per vocabulary entry); a call allocates nothing.
/// Not thread-safe: one sampler per sequence. The same seed, options, logits and history give the same tokens on every
/// run and machine: the generator is xoshiro256**, exp is <see cref="PortableMath.Exp"/> (not the C library's), and all
/// other arithmetic is IEEE float/double in a fixed order.</para>
/// </remarks>
public sealed partial class Sampler
{
    private readonly int _vocab;
    private readonly float[] _work;      // (vocab) logits after bias and penalties
    private readonly ulong[] _keys;      // (vocab) candidates as packed (logit desc, id asc) keys; see Pack
    private readonly double[] _weights;  // (vocab) unnormalised probabilities of the candidates being drawn
    private readonly int[] _counts;      // (vocab) occurrences in the penalty window; all zero between calls
    private readonly int[] _biasIds;     // logit bias as two arrays: enumerating a dictionary would allocate
    private readonly float[] _biasValues;
    private readonly float _temperature, _topP, _minP, _repeatPenalty, _presencePenalty, _frequencyPenalty;
    private readonly int _topK, _penaltyLastN;
    private readonly bool _greedy, _penalize;
    private Xoshiro256StarStar _rng;

    /// <summary>Creates a sampler for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <exception cref="GemmaException">An option is out of range (see <see cref="SamplingOptions.Validate"/>).</exception>
    public Sampler(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(vocabSize);
        Options = options;
        _vocab = vocabSize;
        _temperature = options.Temperature;
        _topK = options.TopK;
        _topP = options.TopP;
        _minP = options.MinP;
        _repeatPenalty = options.RepetitionPenalty;
        _presencePenalty = options.PresencePenalty;
        _frequencyPenalty = options.FrequencyPenalty;
        _penaltyLastN = options.PenaltyLastN;
        _greedy = options.IsGreedy;
        _penalize = options.HasPenalties;

        _work = new float[vocabSize];
        _keys = _greedy ? [] : new ulong[vocabSize];
        _weights = _greedy ? [] : new double[vocabSize];
        _counts = _penalize ? new int[vocabSize] : [];
        int biasCount = options.LogitBias?.Count ?? 0;
        _biasIds = new int[biasCount];
        _biasValues = new float[biasCount];
        if (options.LogitBias != null)
        {
            int i = 0;
            // Sorted by id so that the order of additions never depends on the dictionary's layout.
            foreach (KeyValuePair<int, float> bias in options.LogitBias.OrderBy(b => b.Key))
            {
                _biasIds[i] = bias.Key;
                _biasValues[i] = bias.Value;
                i++;
            }
        }

        Seed = options.Seed ?? Random.Shared.Next();
        _rng = new Xoshiro256StarStar(unchecked((ulong)(long)Seed));
    }

    /// <summary>The options this sampler was created with.</summary>
    public SamplingOptions Options { get; }

    /// <summary>Vocabulary size (required length of a logits row).</summary>
    public int VocabSize => _vocab;

    /// <summary>The seed in use: <see cref="SamplingOptions.Seed"/>, or the random one chosen when it was null.</summary>
    public int Seed { get; }

    /// <summary>Restarts the random generator from <see cref="Seed"/>, so the next draws repeat those of a new sampler.</summary>
    public void Reset() => _rng = new Xoshiro256StarStar(unchecked((ulong)(long)Seed));

    /// <summary>Chooses a token from <paramref name="logits"/> without penalties (no history).</summary>
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, default);

    /// <summary>Chooses the next token.</summary>
    /// <param name="logits">One logit per vocabulary entry (e.g. from <see cref="InferenceContext.Decode"/>); not modified.</param>
    /// <param name="history">The sequence so far, prompt included, oldest first; only its last
    /// <see cref="SamplingOptions.PenaltyLastN"/> tokens are read, and only when a penalty is set.</param>
    /// <returns>A token id in [0, <see cref="VocabSize"/>).</returns>
    /// <exception cref="GemmaException">The logits have the wrong length, a history token is outside the vocabulary,
    /// or every logit is NaN or −∞.</exception>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        Span<float> work = AdjustLogits(logits, history);
        if (_greedy) return ArgMax(work);
        ReadOnlySpan<ulong> candidates = SelectCandidates(work);
        return Draw(work, candidates);
    }

    /// <summary>
    /// Chooses the next token among those whose bit is set in <paramref name="allowed"/> (bit <c>id % 64</c> of word
    /// <c>id / 64</c>): the others are set to −∞ after bias and penalties, before top-k/top-p/min-p. Used by
    /// constrained generation (<see cref="Constraints.OutputConstraint"/>).
    /// </summary>
    internal int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, ReadOnlySpan<ulong> allowed)
    {
        Span<float> work = AdjustLogits(logits, history);
        for (int w = 0; w < allowed.Length; w++)
        {
            ulong bits = allowed[w];
            if (bits == ulong.MaxValue) continue;
            int start = w * 64;
            int count = Math.Min(64, work.Length - start);
            if (bits == 0)
            {
                work.Slice(start, count).Fill(float.NegativeInfinity);
                continue;
            }
            for (int b = 0; b < count; b++)
                if ((bits & (1UL << b)) == 0) work[start + b] = float.NegativeInfinity;
        }
        if (_greedy) return ArgMax(work);
        ReadOnlySpan<ulong> candidates = SelectCandidates(work);
        return Draw(work, candidates);
    }

    /// <summary>Copies the logits into the work buffer and applies the logit bias and the penalties (the first two links).</summary>
    internal Span<float> AdjustLogits(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != _vocab)
            throw new GemmaException($"Sampling: expected {_vocab} logits (the vocabulary size), got {logits.Length}.");
        Span<float> work = _work;
        logits.CopyTo(work);
        for (int i = 0; i < _biasIds.Length; i++) work[_biasIds[i]] += _biasValues[i];
        if (_penalize) ApplyPenalties(work, history);
        return work;
    }

    /// <summary>
    /// Repetition (CTRL: divide a positive logit, multiply a non-positive one), then presence and frequency
    /// (OpenAI: <c>logit -= presence·[count &gt; 0] + frequency·count</c>), once per distinct token of the window.
    /// </summary>
    private void ApplyPenalties(Span<float> work, ReadOnlySpan<int> history)
    {
        int n = _penaltyLastN < 0 ? history.Length : Math.Min(_penaltyLastN, history.Length);
        ReadOnlySpan<int> window = history.Slice(history.Length - n);
        foreach (int id in window)
            if ((uint)id >= (uint)_vocab)
                throw new GemmaException($"Sampling: history token {id} is outside the vocabulary [0, {_vocab}).");

        int[] counts = _counts;
        foreach (int id in window) counts[id]++;
        // Second pass: the first occurrence of each token applies its penalty and clears its count, which leaves
        // the counts array all zero again without a list of touched ids.
        foreach (int id in window)
        {
            int count = counts[id];
            if (count == 0) continue;
            counts[id] = 0;
            float logit = work[id];
            if (_repeatPenalty != 1f) logit = logit <= 0f ? logit * _repeatPenalty : logit / _repeatPenalty;
            logit -= count * _frequencyPenalty + _presencePenalty;
            work[id] = logit;
        }
    }

    /// <summary>Index of the largest logit, lowest id on ties, skipping NaN and −∞.</summary>
    private int ArgMax(ReadOnlySpan<float> work)
    {
        int best = -1;
        float bestLogit = float.NegativeInfinity;
        for (int i = 0; i < work.Length; i++)
        {
            if (work[i] > bestLogit) { best = i; bestLogit = work[i]; }  // false for NaN; strict, so ties keep the first
        }
        if (best < 0) throw NoCandidate();
        return best;
    }

    /// <summary>
    /// Draws one candidate with probability softmax(logit / temperature), computed in double after subtracting the
    /// largest logit. Candidates are visited in the order given, so the draw is a pure function of the generator state.
    /// </summary>
    private int Draw(ReadOnlySpan<float> work, ReadOnlySpan<ulong> candidates)
    {
        if (candidates.Length == 1) return Id(candidates[0]);
        float max = float.NegativeInfinity;
        foreach (ulong key in candidates) max = MathF.Max(max, work[Id(key)]);

        Span<double> weights = _weights.AsSpan(0, candidates.Length);
        double total = 0;
        double invTemperature = 1.0 / _temperature;
        for (int i = 0; i < candidates.Length; i++)
        {
            weights[i] = Weight(work[Id(candidates[i])], max, invTemperature);
            total += weights[i];
        }

        double u = _rng.NextDouble() * total;
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < candidates.Length; i++)
        {
            if (weights[i] == 0) continue;
            cumulative += weights[i];
            last = i;
            if (u < cumulative) return Id(candidates[i]);
        }
        return Id(candidates[last]);  // only reachable through rounding at the very end of the range
    }

    /// <summary>
    /// exp((logit − max) · scale), the unnormalised softmax weight. When the largest logit is +∞ the +∞ tokens share
    /// all the probability (the usual formula would give ∞ − ∞ = NaN).
    /// </summary>
    private static double Weight(float logit, float max, double scale) =>
        float.IsPositiveInfinity(max) ? (float.IsPositiveInfinity(logit) ? 1.0 : 0.0) : PortableMath.Exp(((double)logit - max) * scale);

    private static GemmaException NoCandidate() =>
        new("Sampling: every logit is NaN or -∞ after logit bias and penalties; no token can be chosen.");
}
