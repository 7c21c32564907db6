using Gemma.Core;

namespace Gemma.Cli;

/// <summary>
/// The CLI's side of model resolution (the rules live in <see cref="ModelLocation"/>, Gemma.Core): resolves
/// <c>--model</c> and says on stderr which model it took unless the user named it.
/// </summary>
internal static class ModelLocator
{
    public static ModelLocation Resolve(string? option)
    {
        ModelLocation location = ModelLocation.Resolve(option);
        string? message = location.Source switch
        {
            ModelSource.Bundle => $"gemma: using the model bundled in this executable: {location}",
            ModelSource.EnvironmentVariable => $"gemma: using {ModelLocation.EnvironmentVariable}={location.Path}",
            ModelSource.HuggingFaceCache => $"gemma: using {ModelLocation.DefaultRepository} from the Hugging Face cache: {location.Path}",
            ModelSource.Demo => $"gemma: no --model, {ModelLocation.EnvironmentVariable} or cached {ModelLocation.DefaultRepository}; " +
                                "using the embedded demo model (7.6M parameters, Japanese technical prose)",
            _ => null,
        };
        if (message != null) Console.Error.WriteLine(message);
        return location;
    }

    /// <summary>Resolves and loads.</summary>
    public static GemmaModel Load(string? option, GemmaModelOptions options) => GemmaModel.Load(Resolve(option), options);
}
