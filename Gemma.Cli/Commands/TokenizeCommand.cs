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
/// <c>gemma tokenize [-m MODEL | --tokenizer FILE] (--text TEXT | --prompt-file FILE | &lt; stdin) [--json] [--bos]</c>:
/// prints the ids and pieces of a text, encoded exactly as Hugging Face <c>tokenizer.encode</c> does (control-token
/// text is parsed). The model is found like the other commands' (<c>$GEMMA_MODEL</c>, the HF cache, the demo model).
/// With <c>--json</c> the output is one object <c>{"ids":[...],"pieces":[...]}</c>.
/// </summary>
internal static class TokenizeCommand
{
    /// <summary>Most characters read (64 MiB of UTF-16): a bound on memory, far beyond any context.</summary>
    internal const int MaxChars = 32 * 1024 * 1024;

    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "Model folder or GGUF file (its tokenizer). Default: found as for the other commands." };
        var tokenizerFile = new Option<string>("--tokenizer") { Description = "A tokenizer.json (optionally .gz) or SentencePiece tokenizer.model file." };
        var input = new PromptInput(new Option<string?>("--text", "--prompt", "-p") { Description = "The text to encode." });
        var json = new Option<bool>("--json") { Description = "Print one JSON object {\"ids\":[...],\"pieces\":[...]}." };
        var bos = new Option<bool>("--bos") { Description = "Put <bos> first, as a prompt starts." };

        var command = new Command("tokenize", "Encode text with the Gemma tokenizer and print ids and pieces.") { model, tokenizerFile, json, bos };
        input.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string? modelPath = parse.GetValue(model), tokenizerPath = parse.GetValue(tokenizerFile);
            if (modelPath != null && tokenizerPath != null) throw new UsageException("give --model or --tokenizer, not both.");
            string text = input.Read(parse, MaxChars, $"tokenize reads at most {MaxChars:N0}")
                ?? throw new UsageException("tokenize needs --text, --prompt-file or text on standard input.");
            GemmaTokenizer tokenizer = tokenizerPath != null ? LoadCached(null, tokenizerPath) : LoadCached(ModelLocator.Resolve(modelPath), null);
            int[] ids = tokenizer.EncodeToIds(text, parse.GetValue(bos));
            Console.Out.Write(parse.GetValue(json) ? ToJson(tokenizer, ids) : ToTable(tokenizer, ids));
            Console.Out.Flush();
            return ExitCodes.Success;
        }));
        return command;
    }

    private static (string Key, GemmaTokenizer Tokenizer)? _last;

    /// <summary>
    /// Loads the tokenizer, reusing the previous one when the same file (same path, size and time) is asked for
    /// again: free for a one-shot process, and it lets a host (or the test suite) run the command many times.
    /// </summary>
    private static GemmaTokenizer LoadCached(ModelLocation? model, string? tokenizerPath)
    {
        bool folder = model?.Path is string dir && Directory.Exists(dir);
        string key = folder ? "dir:" + FileKey(Path.Combine(model!.Path!, "tokenizer.json")) + FileKey(Path.Combine(model.Path!, "tokenizer.model"))
                   : model != null ? $"model:{model}|" + (model.Path is string file ? FileKey(file) : "")
                   : "file:" + FileKey(tokenizerPath!);
        if (_last is { } last && last.Key == key) return last.Tokenizer;
        GemmaTokenizer tokenizer;
        if (folder) tokenizer = GemmaTokenizer.FromModelDirectory(model!.Path!);
        else if (model != null)
        {
            // A GGUF file, a bundle or the embedded demo model: the vocabulary lives in the GGUF metadata.
            using GemmaModel gguf = GemmaModel.Load(model, new GemmaModelOptions { Threads = 1 });
            tokenizer = gguf.RequireTokenizer();
        }
        else tokenizer = tokenizerPath!.EndsWith(".model", StringComparison.OrdinalIgnoreCase) ? GemmaTokenizer.FromSentencePieceModel(tokenizerPath)
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
