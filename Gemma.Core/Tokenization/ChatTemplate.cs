using System.Text;

namespace Gemma.Core.Tokenization;

/// <summary>
/// Gemma's chat format, the same as the official Jinja template of gemma-2-2b-jpn-it:
/// <code>
/// &lt;bos&gt;&lt;start_of_turn&gt;user
/// {content, trimmed}&lt;end_of_turn&gt;
/// &lt;start_of_turn&gt;model
/// {content, trimmed}&lt;end_of_turn&gt;
/// &lt;start_of_turn&gt;model
/// </code>
/// (the last line is the generation prompt). Roles alternate user/model starting with user; the assistant role is
/// written <c>model</c>; content is trimmed like Jinja's <c>trim</c> (Python <c>str.strip()</c>).
/// </summary>
/// <remarks>
/// <para><b>System messages.</b> The official template refuses a system role. We accept one system message, only as
/// the first message, and prepend its trimmed text and a blank line (<c>"\n\n"</c>) to the first user message — the
/// usual way Gemma deployments pass instructions. A system message elsewhere, or not followed by a user message, is
/// an error.</para>
/// <para><b>Control tokens.</b> Message text is encoded without control-token parsing: a user who types
/// <c>&lt;start_of_turn&gt;</c> or <c>&lt;end_of_turn&gt;</c> gets ordinary text pieces and cannot forge a turn. Control
/// ids come only from the template's own structure. (Rendering the text with <see cref="Render"/> and encoding it
/// with control parsing, as Hugging Face does, would turn such text into control tokens.)</para>
/// </remarks>
public static class ChatTemplate
{
    /// <summary>Encodes a conversation to ids, ready for the model.</summary>
    /// <param name="tokenizer">A Gemma tokenizer (must have <c>&lt;start_of_turn&gt;</c> and <c>&lt;end_of_turn&gt;</c>).</param>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">End with <c>&lt;start_of_turn&gt;model\n</c> so the model writes the next turn.</param>
    /// <exception cref="GemmaException">Roles do not alternate, a system message is misplaced, or the vocabulary has no turn tokens.</exception>
    public static int[] EncodeToIds(GemmaTokenizer tokenizer, IReadOnlyList<GemmaChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.StartOfTurnId < 0 || tokenizer.EndOfTurnId < 0)
            throw new GemmaException($"Tokenizer '{tokenizer.Source}' has no <start_of_turn>/<end_of_turn> tokens: it is not a chat vocabulary.");
        var ids = new List<int> { tokenizer.BosId };
        foreach (var (role, content) in Turns(messages))
        {
            ids.Add(tokenizer.StartOfTurnId);
            tokenizer.Encode(role + "\n" + content, ids, parseControlTokens: false);
            ids.Add(tokenizer.EndOfTurnId);
            tokenizer.Encode("\n", ids, parseControlTokens: false);
        }
        if (addGenerationPrompt)
        {
            ids.Add(tokenizer.StartOfTurnId);
            tokenizer.Encode("model\n", ids, parseControlTokens: false);
        }
        return ids.ToArray();
    }

    /// <summary>The prompt as text (what the official template renders), for display and logs.</summary>
    public static string Render(IReadOnlyList<GemmaChatMessage> messages, bool addGenerationPrompt = true)
    {
        var text = new StringBuilder("<bos>");
        foreach (var (role, content) in Turns(messages))
            text.Append("<start_of_turn>").Append(role).Append('\n').Append(content).Append("<end_of_turn>\n");
        if (addGenerationPrompt) text.Append("<start_of_turn>model\n");
        return text.ToString();
    }

    /// <summary>Validates the conversation and yields (Gemma role, trimmed content) per turn, with the system text folded in.</summary>
    private static List<(string Role, string Content)> Turns(IReadOnlyList<GemmaChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = new List<(string, string)>(messages.Count);
        string? system = null;
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new GemmaException($"Chat message {i} is null.");
            string content = Trim(m.Content ?? throw new GemmaException($"Chat message {i} has no content."));
            if (m.Role == GemmaChatRole.System)
            {
                if (i != 0) throw new GemmaException($"Chat message {i} is a system message; only the first message may be one.");
                if (messages.Count < 2 || messages[1]?.Role != GemmaChatRole.User)
                    throw new GemmaException("A system message must be followed by a user message (Gemma folds it into that turn).");
                system = content;
                continue;
            }
            bool userTurn = turns.Count % 2 == 0;
            if ((m.Role == GemmaChatRole.User) != userTurn)
                throw new GemmaException($"Chat message {i} is from the {m.Role.ToString().ToLowerInvariant()}; roles must alternate user/assistant/user/... starting with user.");
            if (system is not null)
            {
                content = system.Length == 0 ? content : system + "\n\n" + content;
                system = null;
            }
            turns.Add((userTurn ? "user" : "model", content));
        }
        return turns;
    }

    /// <summary>Python's <c>str.strip()</c>: .NET's white space plus U+001C..U+001F, which Python also strips.</summary>
    internal static string Trim(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsPythonSpace(s[start])) start++;
        while (end > start && IsPythonSpace(s[end - 1])) end--;
        return s[start..end];
    }

    private static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';
}
