using System.Runtime.InteropServices;
using System.Text.Json;
using Gemma.Core.Config;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Core.Synthetic;

/// <summary>
/// Writes a Hugging Face folder of deterministic random bf16 weights for a config (e.g. Gemma 2 2B at its real
/// dimensions), sharded like the real checkpoint, so anyone can benchmark without the download.
/// Speed does not depend on the values; they are scaled (±√(3/fan_in)) so activations stay in a sane range.
/// </summary>
internal static class SyntheticCheckpoint
{
    /// <summary>Shards are cut before a tensor that would push one past this size.</summary>
    public const long ShardBytes = 2L << 30;

    /// <summary>Writes <c>config.json</c>, shards and the index into <paramref name="directory"/>; reports progress in bytes.</summary>
    public static void Write(GemmaConfig config, string directory, ulong seed = 42, string? tokenizerJson = null, IProgress<(long Done, long Total)>? progress = null)
    {
        Directory.CreateDirectory(directory);
        var tensors = new List<(string Name, long[] Shape)>();
        tensors.Add((TensorNaming.HuggingFace.Name(TensorRole.Embedding, -1, config), [config.VocabSize, config.HiddenSize]));
        for (int l = 0; l < config.NumLayers; l++)
        {
            foreach (var (role, shape) in LayerShapes(config))
                tensors.Add((TensorNaming.HuggingFace.Name(role, l, config), shape));
        }
        tensors.Add((TensorNaming.HuggingFace.Name(TensorRole.FinalNorm, -1, config), [config.HiddenSize]));

        long total = tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * 2), done = 0;
        var shards = new List<List<(string Name, long[] Shape)>> { new() };
        long shardSize = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * 2;
            if (shardSize > 0 && shardSize + bytes > ShardBytes) { shards.Add([]); shardSize = 0; }
            shards[^1].Add(t);
            shardSize += bytes;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Count; s++)
        {
            string file = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            var entries = shards[s].Select(t => new SafetensorsTensor(t.Name, GgmlType.BF16, t.Shape, stream =>
            {
                WriteRandomBf16(stream, t.Name, t.Shape, seed);
                done += t.Shape.Aggregate(1L, (a, b) => a * b) * 2;
                progress?.Report((done, total));
            })).ToList();
            SafetensorsWriter.Write(Path.Combine(directory, file), entries, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var t in shards[s]) weightMap[t.Name] = file;
        }
        WriteIndex(Path.Combine(directory, SafetensorsCheckpoint.IndexFileName), weightMap, total);
        File.WriteAllText(Path.Combine(directory, "config.json"), GemmaConfigWriter.ToJson(config));
        if (tokenizerJson != null) File.Copy(tokenizerJson, Path.Combine(directory, "tokenizer.json"), overwrite: true);
    }

    private static IEnumerable<(TensorRole, long[])> LayerShapes(GemmaConfig c)
    {
        long h = c.HiddenSize, f = c.IntermediateSize;
        yield return (TensorRole.InputNorm, [h]);
        yield return (TensorRole.QProj, [c.QueryDim, h]);
        yield return (TensorRole.KProj, [c.KvDim, h]);
        yield return (TensorRole.VProj, [c.KvDim, h]);
        yield return (TensorRole.OProj, [h, c.QueryDim]);
        if (c.HasQkNorm) { yield return (TensorRole.QNorm, [c.HeadDim]); yield return (TensorRole.KNorm, [c.HeadDim]); }
        if (c.HasPostNorms) yield return (TensorRole.PostAttentionNorm, [h]);
        yield return (TensorRole.PreFeedforwardNorm, [h]);
        yield return (TensorRole.GateProj, [f, h]);
        yield return (TensorRole.UpProj, [f, h]);
        yield return (TensorRole.DownProj, [h, f]);
        if (c.HasPostNorms) yield return (TensorRole.PostFeedforwardNorm, [h]);
    }

    private static void WriteRandomBf16(Stream stream, string name, long[] shape, ulong seed)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        // Norm weights (1-D) are 0, i.e. a scale of exactly 1 + 0; matrices uniform in ±sqrt(3 / fan_in).
        float amplitude = shape.Length == 1 ? 0f : MathF.Sqrt(3f / shape[^1]);
        ulong state = Fnv(name) ^ seed | 1;
        var buffer = new ushort[1 << 20];
        for (long written = 0; written < count;)
        {
            int n = (int)Math.Min(buffer.Length, count - written);
            for (int i = 0; i < n; i++)
            {
                // xorshift64*: fast and deterministic across runs and machines.
                state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
                ulong r = state * 0x2545F4914F6CDD1DUL;
                float u = (r >> 40) * (1f / (1 << 24)) * 2f - 1f;
                buffer[i] = BFloat16.FromSingle(u * amplitude);
            }
            stream.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
            written += n;
        }
    }

    private static ulong Fnv(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s) { h ^= ch; h *= 1099511628211UL; }
        return h;
    }

    private static void WriteIndex(string path, SortedDictionary<string, string> weightMap, long totalSize)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("metadata");
        w.WriteNumber("total_size", totalSize);
        w.WriteEndObject();
        w.WriteStartObject("weight_map");
        foreach (var (k, v) in weightMap) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
