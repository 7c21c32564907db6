using System.Text.Json.Nodes;
using Gemma.Core;

namespace Gemma.Tests.Generation;

/// <summary>
/// The demo model (its tokenizer and weights) with a sliding window of 16 and prefill chunks of 8, so a sliding layer's
/// ring holds 23 slots and wraps after a few words: conversations many windows long stay fast. Its text is not the
/// demo's (the weights were trained for 128), but every reuse test compares against a fresh prefill of the same model.
/// </summary>
internal static class SmallWindowModel
{
    public const int Window = 16;
    public const int Chunk = 8;

    private static readonly Lazy<GemmaModel> Shared = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"gemma-tests-window{Window}-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(Fixtures.DemoModel))
        {
            string name = Path.GetFileName(file);
            if (name == "config.json")
            {
                JsonNode config = JsonNode.Parse(File.ReadAllText(file))!;
                config["sliding_window"] = Window;
                File.WriteAllText(Path.Combine(dir, name), config.ToJsonString());
            }
            else if (name.EndsWith(".safetensors", StringComparison.Ordinal) || name.StartsWith("tokenizer", StringComparison.Ordinal) || name.EndsWith(".index.json", StringComparison.Ordinal))
            {
                File.Copy(file, Path.Combine(dir, name), overwrite: true);
            }
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { } };
        return GemmaModel.Load(dir, new GemmaModelOptions { Threads = 1, ContextLength = 1024, PrefillChunk = Chunk });
    });

    public static GemmaModel Instance => Shared.Value;
}
