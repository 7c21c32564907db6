using System.Text.Json;

namespace Gemma.Core.Formats.Safetensors;

/// <summary>
/// The weights of a Hugging Face model folder: either one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c> (<c>{"weight_map": {"tensor.name": "model-00001-of-00003.safetensors", ...}}</c>).
/// The index is untrusted too: shard names must be plain file names inside the folder, every shard must exist,
/// and every tensor must be in the shard the index names, exactly once.
/// </summary>
internal sealed class SafetensorsCheckpoint : ITensorSource
{
    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";
    /// <summary>File name of the shard index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, TensorView> _tensors;

    private SafetensorsCheckpoint(string location, List<SafetensorsFile> files, Dictionary<string, TensorView> tensors)
    {
        Location = location; _files = files; _tensors = tensors;
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorView> Tensors => _tensors;

    /// <summary>True when <paramref name="directory"/> holds a safetensors checkpoint.</summary>
    public static bool Exists(string directory) =>
        File.Exists(Path.Combine(directory, IndexFileName)) || File.Exists(Path.Combine(directory, SingleFileName));

    /// <summary>
    /// Opens the checkpoint in <paramref name="directory"/> (index preferred over a single file); with
    /// <paramref name="copy"/> every file is copied into anonymous memory instead of read through its mapping.
    /// </summary>
    public static SafetensorsCheckpoint Open(string directory, bool copy = false)
    {
        string index = Path.Combine(directory, IndexFileName);
        if (File.Exists(index)) return OpenSharded(directory, index, copy);
        string single = Path.Combine(directory, SingleFileName);
        if (!File.Exists(single))
            throw new GemmaException($"{directory}: no {SingleFileName} or {IndexFileName} in the folder.");
        var file = SafetensorsFile.Open(single, copy);
        return new SafetensorsCheckpoint(directory, [file], new Dictionary<string, TensorView>(file.Tensors, StringComparer.Ordinal));
    }

    private static SafetensorsCheckpoint OpenSharded(string directory, string indexPath, bool copy)
    {
        Dictionary<string, string> weightMap = ReadWeightMap(indexPath);
        var files = new List<SafetensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (string shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(directory, shard);
                if (!File.Exists(shardPath)) throw new GemmaException($"{indexPath}: shard '{shard}' is listed but missing from the folder.");
                var file = SafetensorsFile.Open(shardPath, copy);
                files.Add(file);
                byShard.Add(shard, file);
            }
            var tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            foreach ((string name, string shard) in weightMap)
            {
                if (!byShard[shard].Tensors.TryGetValue(name, out TensorView? view))
                    throw new GemmaException($"{byShard[shard].Path}: tensor '{name}' is listed in {IndexFileName} but not stored in this shard.");
                tensors.Add(name, view);
            }
            foreach (SafetensorsFile file in files)
            {
                foreach (string name in file.Tensors.Keys)
                {
                    if (!weightMap.TryGetValue(name, out string? listed) || byShard[listed] != file)
                        throw new GemmaException($"{file.Path}: tensor '{name}' is stored here but {IndexFileName} does not list it in this shard.");
                }
            }
            return new SafetensorsCheckpoint(directory, files, tensors);
        }
        catch
        {
            foreach (SafetensorsFile f in files) f.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            using var stream = new FileStream(indexPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (stream.Length > 64L << 20) throw new GemmaException($"{indexPath}: the index is implausibly large ({stream.Length} bytes).");
            using JsonDocument doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new GemmaException($"{indexPath}: no \"weight_map\" object.");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty p in map.EnumerateObject())
            {
                string shard = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : "";
                if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or ".." || shard.Contains('\\'))
                    throw new GemmaException($"{indexPath}: tensor '{p.Name}' maps to '{p.Value}', which is not a file name inside the model folder.");
                if (!result.TryAdd(p.Name, shard)) throw new GemmaException($"{indexPath}: tensor '{p.Name}' is listed twice.");
            }
            if (result.Count == 0) throw new GemmaException($"{indexPath}: the weight_map is empty.");
            return result;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new GemmaException($"{indexPath}: cannot read the shard index ({e.Message}).", e);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (SafetensorsFile f in _files) f.Dispose();
        _files.Clear();
    }
}
