using Gemma.Core;

namespace Gemma.Benchmarks.Peer;

/// <summary>Gemma.NET through <see cref="InferenceContext"/>, exactly as <c>gemma bench</c> drives it.</summary>
internal sealed class OursEngine : IPeerEngine
{
    private readonly GemmaModel _model;
    private readonly InferenceContext _context;

    public OursEngine(string path, int threads, int contextLength)
    {
        _model = GemmaModel.Load(path, new GemmaModelOptions { Threads = threads });
        _context = _model.CreateContext(contextLength);
    }

    public string Name => PeerEngines.Ours;

    public int VocabSize => _model.Config.VocabSize;

    public GemmaModel Model => _model;

    public void Reset() => _context.Reset();

    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> tokens, Span<float> allLogits) => _context.Prefill(tokens, allLogits);

    public ReadOnlySpan<float> Decode(int token) => _context.Decode(token);

    public void Dispose()
    {
        _context.Dispose();
        _model.Dispose();
    }
}
