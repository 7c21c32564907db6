using Gemma.Core;

namespace Gemma.Tests.Generation;

/// <summary>One shared load of the embedded demo model (weights are read-only and thread-safe).</summary>
internal static class DemoModel
{
    private static readonly Lazy<GemmaModel> Shared = new(() => GemmaModel.Load(Fixtures.DemoModel, new GemmaModelOptions { Threads = 1, ContextLength = 1024 }));

    public static GemmaModel Instance => Shared.Value;
}
