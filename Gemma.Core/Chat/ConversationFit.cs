namespace Gemma.Core.Chat;

/// <summary>
/// The drop-oldest overflow policy shared by <see cref="ChatSession"/> and <see cref="GemmaChatClient"/>: a
/// conversation fits when its prompt leaves room for the reply, <c>min(maxTokens, context / 4)</c> tokens (at least
/// one); otherwise the oldest user/assistant exchanges are dropped, as few as possible.
/// </summary>
internal static class ConversationFit
{
    /// <summary>Room kept free for the reply: the token budget, but at most a quarter of the context.</summary>
    public static int ReplyRoom(int maxTokens, int contextLength) => Math.Max(1, Math.Min(maxTokens, contextLength / 4));

    /// <summary>
    /// The fewest of <paramref name="exchanges"/> oldest exchanges to drop so that
    /// <c>encode(dropped).Length + room ≤ contextLength</c>, and that prompt; null when even dropping all of them is
    /// not enough. <paramref name="encode"/> renders the conversation without its first <c>dropped</c> exchanges.
    /// </summary>
    public static (int[] Prompt, int Dropped)? DropOldest(Func<int, int[]> encode, int exchanges, int room, int contextLength)
    {
        bool Fits(int[] ids) => ids.Length + room <= contextLength;
        int[] all = encode(0);
        if (Fits(all)) return (all, 0);
        int[] last = encode(exchanges);
        if (!Fits(last)) return null;
        // The prompt only shrinks as more exchanges are dropped, so search between none (too long) and all (fits).
        int lo = 0, hi = exchanges;
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            int[] ids = encode(mid);
            if (Fits(ids)) (hi, last) = (mid, ids);
            else lo = mid;
        }
        return (last, hi);
    }
}
