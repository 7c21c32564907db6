namespace Gemma.Cli.Commands;

/// <summary>Parses <c>--tokens 2,17,301</c>.</summary>
internal static class TokenIds
{
    public static int[] Parse(string text, int vocabSize)
    {
        string[] parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UsageException("--tokens needs at least one token id, e.g. --tokens 2,17,301");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ids[i]))
                throw new UsageException($"--tokens: '{parts[i]}' is not a token id (non-negative integer).");
            if (ids[i] >= vocabSize) throw new UsageException($"--tokens: id {ids[i]} is outside the vocabulary (0..{vocabSize - 1}).");
        }
        return ids;
    }
}
