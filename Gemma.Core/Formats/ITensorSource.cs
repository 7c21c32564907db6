namespace Gemma.Core.Formats;

/// <summary>A set of named, validated tensors backed by one or more mapped files; disposing it unmaps them.</summary>
internal interface ITensorSource : IDisposable
{
    /// <summary>What was opened (a folder or file path), for messages.</summary>
    string Location { get; }

    /// <summary>Every tensor, by name.</summary>
    IReadOnlyDictionary<string, TensorView> Tensors { get; }
}
