namespace Gemma.Core.Tokenization;

/// <summary>Who wrote a chat message.</summary>
public enum GemmaChatRole
{
    /// <summary>Instructions for the model. Gemma has no system turn: see <see cref="ChatTemplate"/> for how it is folded in.</summary>
    System,

    /// <summary>The person talking to the model (Gemma role <c>user</c>).</summary>
    User,

    /// <summary>The model (Gemma role <c>model</c>).</summary>
    Assistant,
}

/// <summary>One message of a conversation.</summary>
/// <param name="Role">Who wrote it.</param>
/// <param name="Content">Its text. It is always encoded as plain text: control-token text in it stays text.</param>
public sealed record GemmaChatMessage(GemmaChatRole Role, string Content)
{
    /// <summary>A user message.</summary>
    public static GemmaChatMessage User(string content) => new(GemmaChatRole.User, content);

    /// <summary>A model (assistant) message.</summary>
    public static GemmaChatMessage Assistant(string content) => new(GemmaChatRole.Assistant, content);

    /// <summary>A system message.</summary>
    public static GemmaChatMessage System(string content) => new(GemmaChatRole.System, content);

    /// <summary>Parses a role name as chat templates write it: <c>user</c>, <c>assistant</c> or <c>model</c>, <c>system</c>.</summary>
    /// <exception cref="GemmaException">The name is none of these.</exception>
    public static GemmaChatRole ParseRole(string role) => role?.Trim().ToLowerInvariant() switch
    {
        "user" => GemmaChatRole.User,
        "assistant" or "model" => GemmaChatRole.Assistant,
        "system" => GemmaChatRole.System,
        _ => throw new GemmaException($"Unknown chat role '{role}': expected user, assistant (model) or system."),
    };
}
