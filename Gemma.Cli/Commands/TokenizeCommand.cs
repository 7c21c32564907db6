using System.Buffers;
using System.CommandLine;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Gemma.Core;
using Gemma.Core.Tokenization;

[assembly: InternalsVisibleTo("Gemma.Tests")]

namespace Gemma.Cli.Commands;

/// <summary>
/// <c>gemma tokenize (--model DIR | --tokenizer FILE) --text TEXT [--json] [--bos]</c>: prints the ids and pieces of a
/// text, encoded exactly as Hugging Face <c>tokenizer.encode</c> does (control-token text is parsed).
/// With <c>--json</c> the output is one object <c>{"ids":[...],"pieces":[...]}</c>.
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (tokenizer.json, else tokenizer.model)." };
        var tokenizerFile = new Option<string>("--tokenizer") { Description = "A tokenizer.json (optionally .gz) or SentencePiece tokenizer.model file." };
        var text = new Option<string>("--text") { Description = "The text to encode.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object {\"ids\":[...],\"pieces\":[...]}." };
        var bos = new Option<bool>("--bos") { Description = "Put <bos> first, as a prompt starts." };

        var command = new Command("tokenize", "Encode text with the Gemma tokenizer and print ids and pieces.")
        {
            model, tokenizerFile, text, json, bos,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(model), parseResult.GetValue(tokenizerFile), parseResult.GetValue(text) ?? "",
            parseResult.GetValue(json), parseResult.GetValue(bos)));
        return command;
    }

    private static int Run(string? modelDir, string? tokenizerPath, string text, bool json, bool addBos)
    {
        if ((modelDir is null) == (tokenizerPath is null))
        {
            Console.Error.WriteLine("gemma: give exactly one of --model DIR or --tokenizer FILE.");
            return ExitCodes.Usage;
        }
        Console.OutputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        try
        {
            var tokenizer = LoadCached(modelDir, tokenizerPath);
            int[] ids = tokenizer.EncodeToIds(text, addBos);
            Console.Out.Write(json ? ToJson(tokenizer, ids) : ToTable(tokenizer, ids));
            Console.Out.Flush();
            return ExitCodes.Success;
        }
        catch (GemmaException e)
        {
            Console.Error.WriteLine($"gemma: error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"gemma: error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }

    private static (string Key, GemmaTokenizer Tokenizer)? _last;

    /// <summary>
    /// Loads the tokenizer, reusing the previous one when the same file (same path, size and time) is asked for
    /// again: free for a one-shot process, and it lets a host (or the test suite) run the command many times.
    /// </summary>
    private static GemmaTokenizer LoadCached(string? modelDir, string? tokenizerPath)
    {
        string key = modelDir is not null ? "dir:" + FileKey(Path.Combine(modelDir, "tokenizer.json")) + FileKey(Path.Combine(modelDir, "tokenizer.model"))
                                          : "file:" + FileKey(tokenizerPath!);
        if (_last is { } last && last.Key == key) return last.Tokenizer;
        var tokenizer = modelDir is not null ? GemmaTokenizer.FromModelDirectory(modelDir)
            : tokenizerPath!.EndsWith(".model", StringComparison.OrdinalIgnoreCase) ? GemmaTokenizer.FromSentencePieceModel(tokenizerPath)
            : GemmaTokenizer.FromTokenizerJson(tokenizerPath);
        _last = (key, tokenizer);
        return tokenizer;
    }

    private static string FileKey(string path)
    {
        var info = new FileInfo(Path.GetFullPath(path));
        return info.Exists ? $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks};" : $"{info.FullName}|missing;";
    }

    /// <summary>One line of JSON written by Utf8JsonWriter (no reflection, so Native AOT is fine).</summary>
    internal static string ToJson(GemmaTokenizer tokenizer, int[] ids)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("ids");
            foreach (int id in ids) writer.WriteNumberValue(id);
            writer.WriteEndArray();
            writer.WriteStartArray("pieces");
            foreach (int id in ids) writer.WriteRawValue(JsonString(tokenizer.GetPiece(id)));
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    /// <summary>
    /// A JSON string literal that keeps every character as UTF-8 (System.Text.Json's encoders escape emoji and other
    /// non-BMP characters as \uXXXX pairs): only '"', '\\' and control characters are escaped.
    /// </summary>
    private static string JsonString(string s)
    {
        var json = new StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\n': json.Append("\\n"); break;
                case '\t': json.Append("\\t"); break;
                case '\r': json.Append("\\r"); break;
                default:
                    if (c < ' ') json.Append($"\\u{(int)c:x4}");
                    else json.Append(c);
                    break;
            }
        }
        return json.Append('"').ToString();
    }

    private static string ToTable(GemmaTokenizer tokenizer, int[] ids)
    {
        var table = new StringBuilder();
        foreach (int id in ids)
        {
            string piece = tokenizer.GetPiece(id).Replace("\n", "\\n").Replace("\t", "\\t").Replace("\r", "\\r");
            table.Append($"{id,7}  {piece}\n");
        }
        table.Append($"{ids.Length} tokens\n");
        return table.ToString();
    }
}
