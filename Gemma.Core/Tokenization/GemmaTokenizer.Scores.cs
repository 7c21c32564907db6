namespace Gemma.Core.Tokenization;

public sealed partial class GemmaTokenizer
{
    /// <summary>
    /// The SentencePiece score of a piece (higher merges first), as a <c>tokenizer.model</c> or a GGUF
    /// <c>tokenizer.ggml.scores</c> array stores it. Tokenizers read from a SentencePiece model or a vocabulary keep
    /// their scores; for a <c>tokenizer.json</c> (ranked merges, no scores) a normal piece scores minus one minus the
    /// rank of the first merge producing it — so that merging by score reproduces the merge list — and pieces no merge
    /// produces (single characters, special and byte pieces) score 0.
    /// </summary>
    public float GetScore(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(id, _scores.Length);
        return _scores[id];
    }

    private static float[] DeriveScores(Dictionary<long, long> merges, int vocabularySize, GemmaTokenType[] types)
    {
        var scores = new float[vocabularySize];
        var best = new int[vocabularySize];
        Array.Fill(best, int.MaxValue);
        foreach (long packed in merges.Values)
        {
            int rank = (int)(packed >> 32), id = (int)packed;
            if ((uint)id < (uint)vocabularySize && rank < best[id]) best[id] = rank;
        }
        for (int id = 0; id < vocabularySize; id++)
            if (best[id] != int.MaxValue && types[id] == GemmaTokenType.Normal) scores[id] = -1f - best[id];
        return scores;
    }
}
