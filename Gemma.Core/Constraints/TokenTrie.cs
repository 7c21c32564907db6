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
    public required byte[] SubtreeClasses { get; init; } // (node) bit c: every byte below the node is in AsciiClasses c
    public required byte[] Height { get; init; }    // (node) longest path below the node, in bytes (capped at 255)
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
        // Subtree summaries, children before parents (reverse preorder): the classes holding every byte below a node
        // and the longest path below it. A walk takes a subtree whole when its state surely reads that many bytes of
        // one of those classes (CompiledGrammar.RunLength).
        int n = label.Count;
        var classes = new byte[n];
        var height = new byte[n];
        for (int i = n - 1; i >= 0; i--)
        {
            byte m = byte.MaxValue;
            int h = 0;
            for (int c = i + 1; c < end[i]; c = end[c])
            {
                m &= (byte)(AsciiClasses.Of[label[c]] & classes[c]);
                h = Math.Max(h, height[c] + 1);
            }
            classes[i] = m;
            height[i] = (byte)Math.Min(h, 255);
        }
        return new TokenTrie
        {
            Label = [.. label], Depth = [.. depth], End = [.. end], TokenStart = [.. tokenStart], TokenIds = [.. ids],
            SubtreeClasses = classes, Height = height, MaxDepth = maxDepth,
        };
    }
}

/// <summary>
/// Common ASCII byte classes a token's bytes fall in: digits, lower case, upper case, lower-case hex, hex, letters,
/// letters and digits, and printable JSON string content (ASCII without <c>"</c> and <c>\</c>). Trie subtrees record
/// which of them hold all their bytes; grammar states how far they surely read each (<see cref="CompiledGrammar.RunLength"/>).
/// </summary>
internal static class AsciiClasses
{
    public const int Count = 8;

    /// <summary>(byte) bit c set when the byte is in class c.</summary>
    public static readonly byte[] Of = Build();

    private static byte[] Build()
    {
        Func<char, bool>[] member =
        [
            char.IsAsciiDigit, char.IsAsciiLetterLower, char.IsAsciiLetterUpper,
            c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f', char.IsAsciiHexDigit, char.IsAsciiLetter,
            char.IsAsciiLetterOrDigit, c => c is >= ' ' and <= '~' and not '"' and not '\\',
        ];
        var of = new byte[256];
        for (int b = 0; b < 128; b++)
            for (int c = 0; c < Count; c++)
                if (member[c]((char)b)) of[b] |= (byte)(1 << c);
        return of;
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
    public required int Family { get; init; }            // index into TokenVocabulary.FamilyChars; -1 for the remainder
    public required int MinChars { get; init; }          // every token has MinChars..MaxChars characters of its family
    public required int MaxChars { get; init; }          // CompiledGrammar.Unbounded: no upper bound
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
    /// The slices, disjoint, in three families growing by length: tokens of lower-case ASCII letters only (1, …, 12,
    /// 13–16, 17+ characters: most word pieces; counted runs like <c>[a-z]{2,12}</c> take them whole or skip them),
    /// the other tokens of ASCII letters and digits only (1, …, 10, 11–15, 16–20, 21+: identifiers, the runs of
    /// formats like <c>email</c>), then the other tokens that are JSON string content (no <c>"</c>, <c>\</c> or
    /// control character) of exactly 1, 2, …, 10 characters, of 11–15, 16–20, 21–30 and 31 or more, then everything
    /// else. Nearly all of Gemma's 256k tokens are string content, so a state inside a JSON string (or in any rule
    /// that allows such text) learns its mask by walking only the small remainder; the length steps serve strings
    /// with a <c>maxLength</c>: a state with n characters left takes the slices up to n whole and skips the longer
    /// ones without a walk.
    /// </summary>
    private const string Content = @"[^""\\\x00-\x1F\x7F]", Alnum = "[A-Za-z0-9]", Lower = "[a-z]";
    private static readonly string[] FamilyPatterns = [Lower, Alnum, Content];
    private static readonly (int Min, int Max)[][] FamilyLengths =
    [
        [.. Enumerable.Range(1, 12).Select(n => (n, n)), (13, 16), (17, CompiledGrammar.Unbounded)],
        [.. Enumerable.Range(1, 10).Select(n => (n, n)), (11, 15), (16, 20), (21, CompiledGrammar.Unbounded)],
        [.. Enumerable.Range(1, 10).Select(n => (n, n)), (11, 15), (16, 20), (21, 30), (31, CompiledGrammar.Unbounded)],
    ];

    private TokenVocabulary(GemmaTokenizer tokenizer)
    {
        Size = tokenizer.VocabularySize;
        Bytes = new byte[Size][];
        ByteToken = new int[256];
        Array.Fill(ByteToken, -1);
        FamilyChars = [.. FamilyPatterns.Select(Compile)];
        CompiledGrammar content = Compile(Content + "+");
        var slices = new List<(int Family, int Min, int Max)>();
        for (int f = 0; f < FamilyPatterns.Length; f++)
            foreach ((int min, int max) in FamilyLengths[f]) slices.Add((f, min, max));
        var entries = new List<(byte[], int, int)>[slices.Count + 1];
        for (int k = 0; k < entries.Length; k++) entries[k] = [];
        for (int id = 0; id < Size; id++)
        {
            if (tokenizer.IsControl(id)) { Bytes[id] = []; continue; }
            byte[] b = tokenizer.GetUtf8(id, skipControlTokens: true).ToArray();
            Bytes[id] = b;
            if (b.Length == 0) continue;
            int slice = slices.Count;
            if (b.All(x => char.IsAsciiLetterLower((char)x)))
            {
                slice = slices.FindIndex(x => x.Family == 0 && b.Length <= x.Max);
            }
            else if (b.All(x => char.IsAsciiLetterOrDigit((char)x)))
            {
                slice = slices.FindIndex(x => x.Family == 1 && b.Length <= x.Max);
            }
            else if (Matches(content, b))
            {
                int chars = 0;
                foreach (byte x in b) if ((x & 0xC0) != 0x80) chars++; // UTF-8: count the lead bytes
                slice = slices.FindIndex(x => x.Family == 2 && chars <= x.Max);
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
                Family = k < slices.Count ? slices[k].Family : -1,
                MinChars = k < slices.Count ? slices[k].Min : 1,
                MaxChars = k < slices.Count ? slices[k].Max : CompiledGrammar.Unbounded,
                Pattern = k < slices.Count
                    ? $"{FamilyPatterns[slices[k].Family]}{{{slices[k].Min},{(slices[k].Max == CompiledGrammar.Unbounded ? "" : slices[k].Max)}}}"
                    : "(the rest)",
            };
        }
    }

    public static TokenVocabulary For(GemmaTokenizer tokenizer) => Cache.GetValue(tokenizer, t => new TokenVocabulary(t));

    public int Size { get; }
    public byte[][] Bytes { get; }   // (id) text bytes; empty for control tokens
    public int[] ByteToken { get; }  // (byte) a token that is exactly that byte, or -1
    public TokenSlice[] Slices { get; } // disjoint; together all text tokens, grouped by family
    public CompiledGrammar[] FamilyChars { get; } // (family) one character of the family's class

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
