using System.Text;
using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Tokenization;
using SharpFuzz;

namespace Gemma.Fuzz;

/// <summary>
/// Fuzz targets for the loaders. Each reads one input and must either load it or throw <see cref="GemmaException"/>;
/// any other exception escapes and the fuzzer records a crash. Usage:
/// <c>Gemma.Fuzz TARGET [--libfuzzer]</c> with TARGET one of safetensors, config, tokenizer-json, tokenizer-model, index;
/// <c>Gemma.Fuzz TARGET --run FILE...</c> replays inputs (a crash reproducer, a corpus) without a fuzzer;
/// <c>Gemma.Fuzz tokenizer-json|tokenizer-model --write-seed FILE</c> writes a small valid seed.
/// </summary>
internal static class Program
{
    private static readonly string Scratch = Path.Combine(Path.GetTempPath(), $"gemma-fuzz-{Environment.ProcessId}");

    private static int Main(string[] args)
    {
        if (args.Length == 0 || !Targets.TryGetValue(args[0], out Action<byte[]>? target))
        {
            Console.Error.WriteLine($"usage: Gemma.Fuzz ({string.Join("|", Targets.Keys)}) [--libfuzzer | --run FILE...]");
            return 1;
        }
        Directory.CreateDirectory(Scratch);
        if (args.Length > 2 && args[1] == "--write-seed")
        {
            File.WriteAllBytes(args[2], args[0] == "tokenizer-model" ? Seeds.SentencePieceModel() : Seeds.TokenizerJson());
            return 0;
        }
        if (args.Length > 1 && args[1] == "--run")
        {
            foreach (string file in args.Skip(2))
            {
                try
                {
                    target(File.ReadAllBytes(file));
                    Console.WriteLine($"{file}: loaded");
                }
                catch (GemmaException e)
                {
                    Console.WriteLine($"{file}: refused: {e.Message}");
                }
            }
            return 0;
        }
        if (args.Length > 1 && args[1] == "--libfuzzer") Fuzzer.LibFuzzer.Run(span => Guarded(target, span.ToArray()));
        else Fuzzer.OutOfProcess.Run(stream =>
        {
            var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            Guarded(target, buffer.ToArray());
        });
        return 0;
    }

    /// <summary>Our own exception type is the expected way to refuse an input; everything else is a finding.</summary>
    private static void Guarded(Action<byte[]> target, byte[] input)
    {
        try
        {
            target(input);
        }
        catch (GemmaException)
        {
        }
    }

    private static readonly Dictionary<string, Action<byte[]>> Targets = new(StringComparer.Ordinal)
    {
        ["safetensors"] = input =>
        {
            string path = Path.Combine(Scratch, "model.safetensors");
            File.Delete(path);
            File.WriteAllBytes(path, input);
            using var file = SafetensorsFile.Open(path);
            foreach (var t in file.Tensors.Values) Touch(t);
        },
        ["config"] = input => GemmaConfigReader.Parse(Encoding.UTF8.GetString(input), "config.json"),
        ["tokenizer-json"] = input => Use(GemmaTokenizer.FromTokenizerJson(new MemoryStream(input), "tokenizer.json")),
        ["tokenizer-model"] = input => Use(GemmaTokenizer.FromSentencePieceModel(new MemoryStream(input), "tokenizer.model")),
        ["index"] = input =>
        {
            File.WriteAllBytes(Path.Combine(Scratch, SafetensorsCheckpoint.IndexFileName), input);
            SafetensorsCheckpoint.Open(Scratch).Dispose();
        },
    };

    /// <summary>Reads the first and last byte of a tensor through the library's checked pointer.</summary>
    private static unsafe void Touch(Gemma.Core.Formats.TensorView t)
    {
        byte* p = t.Data;
        if (t.ByteLength > 0 && (p[0] | p[t.ByteLength - 1]) == 256) throw new InvalidOperationException("unreachable");
    }

    private static void Use(GemmaTokenizer tokenizer)
    {
        int[] ids = tokenizer.EncodeToIds("Debian パッケージ <start_of_turn>user 123 😀", addBos: true);
        _ = tokenizer.Decode(ids);
    }
}
