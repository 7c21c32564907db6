using System.Runtime.CompilerServices;
using Gemma.Core.Tokenization;

namespace Gemma.Core.Constraints;

/// <summary>
/// A byte trie of token strings laid out in preorder: node <c>i</c>'s subtree is the index range
/// <c>[i, End[i])</c>, its first child (if any) is <c>i + 1</c>, and the tokens ending at it are
/// <c>TokenIds[TokenStart[i] .. TokenStart[i + 1])</c>. A walk is a linear scan that jumps over dead subtrees.
/// </summary>
internal sealed class TokenTrie
{
    public required byte[] Label { get; init; }     // (node) byte on the edge into the node; root unused
    public required int[] Depth { get; init; }      // (node) bytes from the root
    public required int[] End { get; init; }        // (node) one past the last node of the subtree
    public required int[] TokenStart { get; init; } // (node + 1) start of the node's tokens in TokenIds
    public required int[] TokenIds { get; init; }
    public int NodeCount => Label.Length;
    public int MaxDepth { get; init; }

    /// <summary>Builds the trie of (bytes, id) pairs; empty byte strings are skipped.</summary>
    public static TokenTrie Build(List<(byte[] Bytes, int Offset, int Id)> tokens)
    {
        tokens.RemoveAll(t => t.Bytes.Length - t.Offset <= 0);
        // Sort by bytes: as Latin-1 strings (one char per byte), ordinal order is byte order, and the runtime's
        // ordinal string sort is several times faster than a span comparer.
        var keys = new string[tokens.Count];
        var order = new int[tokens.Count];
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = System.Text.Encoding.Latin1.GetString(tokens[i].Bytes, tokens[i].Offset, tokens[i].Bytes.Length - tokens[i].Offset);
            order[i] = i;
        }
        Array.Sort(keys, order, StringComparer.Ordinal);
        var sorted = new List<(byte[] Bytes, int Offset, int Id)>(keys.Length);
        foreach (int i in order) sorted.Add(tokens[i]);
        tokens = sorted;
        var label = new List<byte> { 0 };
        var depth = new List<int> { 0 };
        var end = new List<int> { 0 };
        var tokenStart = new List<int> { 0 };
        var ids = new List<int>(tokens.Count);
        var path = new List<int> { 0 }; // path[d] = node at depth d on the current path
        ReadOnlySpan<byte> prev = default;
        int maxDepth = 0;
        foreach ((byte[] bytes, int offset, int id) in tokens)
        {
            ReadOnlySpan<byte> cur = bytes.AsSpan(offset);
            int lcp = cur.CommonPrefixLength(prev);
            lcp = Math.Min(lcp, path.Count - 1);
            for (int d = path.Count - 1; d > lcp; d--) end[path[d]] = label.Count;
            path.RemoveRange(lcp + 1, path.Count - lcp - 1);
            for (int d = lcp; d < cur.Length; d++)
            {
                path.Add(label.Count);
                label.Add(cur[d]);
                depth.Add(d + 1);
                end.Add(0);
                tokenStart.Add(ids.Count);
            }
            ids.Add(id);
            maxDepth = Math.Max(maxDepth, cur.Length);
            prev = cur;
        }
        for (int d = path.Count - 1; d >= 0; d--) end[path[d]] = label.Count;
        tokenStart.Add(ids.Count);
        return new TokenTrie
        {
            Label = [.. label], Depth = [.. depth], End = [.. end], TokenStart = [.. tokenStart], TokenIds = [.. ids],
            MaxDepth = maxDepth,
        };
    }
}

/// <summary>
/// One part of the vocabulary (llguidance's "slices"): a trie of its tokens, their bitset, and — except for the last,
/// catch-all slice — the language its tokens are whole words of. When every word of that language keeps a parser state
/// inside its rule, the whole slice is accepted with one bitset OR instead of a walk over its trie.
/// </summary>
internal sealed class TokenSlice
{
    public required TokenTrie Trie { get; init; }
    public required ulong[] Mask { get; init; }          // (vocab / 64) the slice's tokens
    public required CompiledGrammar? Language { get; init; } // one rule, no calls; null for the remainder
    public required string Pattern { get; init; }
}

/// <summary>
/// A tokenizer's vocabulary as the constraint engine sees it: the UTF-8 bytes each id adds to the text, its text
/// tokens (control and unknown pieces are never allowed by a grammar) split into <see cref="Slices"/>, and for each
/// byte a token that is exactly that byte (Gemma has byte-fallback pieces <c>&lt;0xNN&gt;</c>), used when the budget
/// forces the shortest completion. Built once per tokenizer and shared.
/// </summary>
internal sealed class TokenVocabulary
{
    private static readonly ConditionalWeakTable<GemmaTokenizer, TokenVocabulary> Cache = new();

    /// <summary>
    /// The slices, disjoint: tokens that are JSON string content (no <c>"</c>, <c>\</c> or control character) of
    /// exactly 1, 2, …, 10 characters, of 11–30 and of 31 or more, then everything else. Nearly all of Gemma's 256k
    /// tokens are string content, so a state inside a JSON string (or in any rule that allows such text) learns its
    /// mask by walking only the small remainder; the per-length slices serve strings with a <c>maxLength</c>, whose
    /// states near the limit accept exactly the slices up to the characters left.
    /// </summary>
    private const string Content = @"[^""\\\x00-\x1F\x7F]";
    internal static readonly string[] SlicePatterns =
        [.. Enumerable.Range(1, 10).Select(n => $"{Content}{{{n}}}"), Content + "{11,30}", Content + "{31,}"];

    private TokenVocabulary(GemmaTokenizer tokenizer)
    {
        Size = tokenizer.VocabularySize;
        Bytes = new byte[Size][];
        ByteToken = new int[256];
        Array.Fill(ByteToken, -1);
        CompiledGrammar[] languages = [.. SlicePatterns.Select(Compile)];
        CompiledGrammar content = Compile(Content + "+");
        var entries = new List<(byte[], int, int)>[languages.Length + 1];
        for (int k = 0; k < entries.Length; k++) entries[k] = [];
        for (int id = 0; id < Size; id++)
        {
            if (tokenizer.IsControl(id)) { Bytes[id] = []; continue; }
            byte[] b = tokenizer.GetUtf8(id, skipControlTokens: true).ToArray();
            Bytes[id] = b;
            if (b.Length == 0) continue;
            int slice = languages.Length;
            if (Matches(content, b))
            {
                int chars = 0;
                foreach (byte x in b) if ((x & 0xC0) != 0x80) chars++; // UTF-8: count the lead bytes
                slice = chars <= 10 ? chars - 1 : chars <= 30 ? 10 : 11;
            }
            entries[slice].Add((b, 0, id));
            // Prefer the ordinary piece ("a") to the byte-fallback one ("<0x61>"): the model has seen it more.
            if (b.Length == 1 && (ByteToken[b[0]] < 0 || tokenizer.GetTokenType(ByteToken[b[0]]) == GemmaTokenType.Byte))
                ByteToken[b[0]] = id;
        }
        Slices = new TokenSlice[entries.Length];
        for (int k = 0; k < entries.Length; k++)
        {
            var mask = new ulong[(Size + 63) / 64];
            foreach ((_, _, int id) in entries[k]) mask[id >> 6] |= 1UL << id;
            Slices[k] = new TokenSlice
            {
                Trie = TokenTrie.Build(entries[k]), Mask = mask,
                Language = k < languages.Length ? languages[k] : null,
                Pattern = k < languages.Length ? SlicePatterns[k] : "(the rest)",
            };
        }
    }

    public static TokenVocabulary For(GemmaTokenizer tokenizer) => Cache.GetValue(tokenizer, t => new TokenVocabulary(t));

    public int Size { get; }
    public byte[][] Bytes { get; }   // (id) text bytes; empty for control tokens
    public int[] ByteToken { get; }  // (byte) a token that is exactly that byte, or -1
    public TokenSlice[] Slices { get; } // disjoint; together all text tokens

    private static CompiledGrammar Compile(string pattern)
    {
        var def = new GrammarDefinition("root");
        def.Add("root", RegexParser.Parse(pattern, RegexParser.Mode.Anchored));
        return GrammarCompiler.Compile(def);
    }

    private static bool Matches(CompiledGrammar language, ReadOnlySpan<byte> text)
    {
        int s = language.RuleStart[language.Root];
        foreach (byte b in text)
        {
            s = language.Step(s, b);
            if (s < 0) return false;
        }
        return language.Final[s];
    }
}
