using System.Text.Json;
using Gemma.Core.Tokenization;
using NUnit.Framework;

namespace Gemma.Tests.Tokenization;

/// <summary>Fixtures read from the repository (found by walking up to gemma.sln), shared by the tokenizer tests.</summary>
public static class TokenizerFixtures
{
    private static readonly Lazy<string> Root = new(FindRoot);
    private static readonly Lazy<GemmaTokenizer> FullTokenizer = new(() => GemmaTokenizer.FromTokenizerJson(FullTokenizerPath));
    private static readonly Lazy<GemmaTokenizer> DemoTokenizer = new(() => GemmaTokenizer.FromModelDirectory(DemoModelDir));
    private static readonly Lazy<JsonElement> Dev = new(() => Load(Path.Combine(RepoRoot, "Gemma.Tests", "Fixtures", "goldens", "tokenizer-dev.json")));
    private static readonly Lazy<JsonElement> DemoGolden = new(() => Load(Path.Combine(DemoModelDir, "golden.json")));

    public static string RepoRoot => Root.Value;
    public static string FullTokenizerPath => Path.Combine(RepoRoot, "Gemma.Tests", "Fixtures", "gemma2-tokenizer.json.gz");
    public static string DemoModelDir => Path.Combine(RepoRoot, "Gemma.Cli", "demo-model", "gemma2-ja-demo");

    /// <summary>The real 256,000-piece Gemma 2 tokenizer (loaded once).</summary>
    internal static GemmaTokenizer Full => FullTokenizer.Value;

    /// <summary>The demo model's cut-down tokenizer (11,427 pieces).</summary>
    internal static GemmaTokenizer Demo => DemoTokenizer.Value;

    public sealed record DevCase(int Index, string Text, int[] Ids, int[] IdsWithBos, string[] Pieces, string Decoded)
    {
        public override string ToString() => $"#{Index}";
    }

    public sealed record DevChat(int Index, (string Role, string Content)[] Messages, string Prompt, int[] Ids)
    {
        public override string ToString() => $"chat#{Index}";
    }

    public static IEnumerable<DevCase> DevCases() =>
        Dev.Value.GetProperty("cases").EnumerateArray().Select((c, i) => new DevCase(i,
            c.GetProperty("text").GetString()!, Ints(c.GetProperty("ids")), Ints(c.GetProperty("ids_with_bos")),
            c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray(),
            c.GetProperty("decoded").GetString()!));

    public static IEnumerable<DevChat> DevChats() =>
        Dev.Value.GetProperty("chats").EnumerateArray().Select((c, i) => new DevChat(i,
            c.GetProperty("messages").EnumerateArray()
                .Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToArray(),
            c.GetProperty("prompt").GetString()!, Ints(c.GetProperty("ids"))));

    /// <summary>The demo model's golden prompts and their ids (which start with BOS).</summary>
    public static IEnumerable<(string Prompt, int[] Ids)> DemoPrompts() =>
        DemoGolden.Value.GetProperty("goldens").EnumerateArray()
            .Select(g => (g.GetProperty("prompt").GetString()!, Ints(g.GetProperty("prompt_ids"))));

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static JsonElement Load(string path) => JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;

    private static string FindRoot()
    {
        string start = TestContext.CurrentContext?.TestDirectory ?? AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "gemma.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No gemma.sln above '{start}'.");
    }
}
