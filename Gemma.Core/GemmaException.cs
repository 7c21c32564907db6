namespace Gemma.Core;

/// <summary>
/// The one exception type the library throws for bad model files, bad configuration and bad requests.
/// Messages name the file (and tensor, key or argument) and the problem.
/// </summary>
public class GemmaException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    public GemmaException(string message) : base(message) { }

    /// <summary>Creates an exception wrapping the low-level cause.</summary>
    public GemmaException(string message, Exception inner) : base(message, inner) { }
}
