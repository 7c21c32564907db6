using Gemma.Kernels;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// The tensors of a GGUF file as an <see cref="ITensorSource"/> with PyTorch-order shapes, every one a zero-copy
/// view of the mapping. Which of them the kernels read in place and which the weights loader converts
/// at load (Q4_K, Q6_K, … → Q8_0) is the element-type table's decision (<see cref="ElementTraits"/>); a type the
/// engine cannot decode at all is refused here, at open.
/// </summary>
internal sealed unsafe class GgufCheckpoint : ITensorSource
{
    private readonly GgufFile _file;
    private readonly Dictionary<string, TensorView> _tensors = new(StringComparer.Ordinal);

    private GgufCheckpoint(GgufFile file)
    {
        _file = file;
        foreach (GgufTensorInfo t in file.Tensors) _tensors.Add(t.Name, View(t));
    }

    /// <summary>The underlying file (metadata for the config and the tokenizer).</summary>
    public GgufFile File => _file;

    /// <inheritdoc />
    public string Location => _file.Path;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorView> Tensors => _tensors;

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public static GgufCheckpoint Open(string path) => Open(GgufFile.Open(path));

    /// <summary>Wraps an opened <paramref name="file"/>, which the checkpoint then owns (disposed on failure too).</summary>
    internal static GgufCheckpoint Open(GgufFile file)
    {
        try
        {
            return new GgufCheckpoint(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private TensorView View(GgufTensorInfo t)
    {
        if (ElementTypes.Of(t.Type).Decode is null)
            throw new GemmaException($"{_file.Path}: tensor '{t.Name}' has ggml type {t.Type}, which this engine cannot decode (supported: {ElementTypes.Decodable}).");
        return new TensorView(t.Name, t.Type, t.GetPyTorchShape(), _file.Path, t.FileOffset, t.DataPointer, t.ByteSize);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _file.Dispose();
    }
}
