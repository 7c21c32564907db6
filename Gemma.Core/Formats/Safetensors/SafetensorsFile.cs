using Gemma.Kernels;
using System.Text.Json;

namespace Gemma.Core.Formats.Safetensors;

/// <summary>
/// One <c>.safetensors</c> file, memory-mapped. Layout: an 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON <c>{"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>,
/// then the data region; offsets are relative to the start of the data region.
/// The header is untrusted: every tensor's range must lie inside the data region, match its dtype × shape
/// exactly and not overlap another tensor, or the file is rejected before any tensor is used.
/// </summary>
internal sealed class SafetensorsFile : IDisposable
{
    /// <summary>Headers larger than this are rejected (the real 2B shards have headers of a few tens of KiB).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private readonly MappedFile _file;
    private readonly Dictionary<string, TensorView> _tensors;

    private SafetensorsFile(MappedFile file, Dictionary<string, TensorView> tensors)
    {
        _file = file;
        _tensors = tensors;
    }

    /// <summary>The file path.</summary>
    public string Path => _file.Path;

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, TensorView> Tensors => _tensors;

    /// <summary>
    /// Opens and validates <paramref name="path"/> (mapped, or with <paramref name="copy"/> copied into anonymous memory);
    /// any defect is a <see cref="GemmaException"/> naming the file.
    /// </summary>
    public static SafetensorsFile Open(string path, bool copy = false)
    {
        MappedFile file = MappedFile.Open(path, copy);
        try
        {
            return new SafetensorsFile(file, ReadHeader(file));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static unsafe Dictionary<string, TensorView> ReadHeader(MappedFile file)
    {
        string p = file.Path;
        if (file.Length < 8) throw new GemmaException($"{p}: too short for a safetensors header ({file.Length} bytes).");
        ulong headerLength = *(ulong*)file.Pointer(0, 8, "header length");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Big-endian hosts are not supported.");
        if (headerLength == 0 || headerLength > MaxHeaderBytes || (long)headerLength > file.Length - 8)
            throw new GemmaException($"{p}: header length {headerLength} is impossible for a file of {file.Length} bytes.");
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;

        JsonDocument doc;
        try
        {
            var bytes = new ReadOnlyMemory<byte>(file.Span(8, (int)headerLength, "header").ToArray());
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new GemmaException($"{p}: the header is not valid JSON ({e.Message}).", e);
        }

        using (doc)
        try
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new GemmaException($"{p}: the header is not a JSON object.");
            var tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            foreach (JsonProperty entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__") continue;
                if (tensors.ContainsKey(entry.Name)) throw new GemmaException($"{p}: tensor '{entry.Name}' appears twice in the header.");
                TensorView view = ReadEntry(file, entry, dataStart, dataLength);
                tensors.Add(entry.Name, view);
            }
            CheckNoOverlap(p, tensors.Values);
            return tensors;
        }
        catch (InvalidOperationException e) // a name or string that is not valid UTF-8 (or an escaped lone surrogate)
        {
            throw new GemmaException($"{p}: the header holds text that cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>The safetensors dtype names this engine reads and writes, by element type.</summary>
    internal static readonly IReadOnlyDictionary<GgmlType, string> DTypes = new Dictionary<GgmlType, string>
    {
        [GgmlType.F32] = "F32",
        [GgmlType.F16] = "F16",
        [GgmlType.BF16] = "BF16",
    };

    private static unsafe TensorView ReadEntry(MappedFile file, JsonProperty entry, long dataStart, long dataLength)
    {
        string where = $"{file.Path}: tensor '{entry.Name}'";
        JsonElement e = entry.Value;
        if (e.ValueKind != JsonValueKind.Object) throw new GemmaException($"{where}: header entry is not an object.");
        if (!e.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new GemmaException($"{where}: missing dtype.");
        string dtypeText = dtypeElement.GetString()!;
        if (!DTypes.Values.Contains(dtypeText))
            throw new GemmaException($"{where}: unsupported dtype '{dtypeText}' (F32, F16 and BF16 are supported).");
        GgmlType dtype = DTypes.First(d => d.Value == dtypeText).Key;
        if (!e.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array || shapeElement.GetArrayLength() > 8)
            throw new GemmaException($"{where}: missing or invalid shape.");
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0 || dim > int.MaxValue)
                throw new GemmaException($"{where}: invalid dimension in shape {shapeElement.GetRawText()}.");
            shape[i++] = dim;
            elements = dim == 0 ? 0 : elements > long.MaxValue / 16 / dim ? throw new GemmaException($"{where}: shape {shapeElement.GetRawText()} is too large.") : elements * dim;
        }
        if (!e.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw new GemmaException($"{where}: missing or invalid data_offsets.");
        if (begin < 0 || end < begin || end > dataLength)
            throw new GemmaException($"{where}: data_offsets [{begin}, {end}] lie outside the data region ({dataLength} bytes).");
        long expected = ElementTypes.Of(dtype).TryByteSize(elements);
        if (end - begin != expected)
            throw new GemmaException($"{where}: data_offsets span {end - begin} bytes but {dtypeText} {shapeElement.GetRawText()} needs {expected}.");
        long offset = dataStart + begin, length = end - begin;
        return new TensorView(entry.Name, dtype, shape, file.Path, offset, file.Pointer(offset, length, $"tensor '{entry.Name}'"), length);
    }

    private static void CheckNoOverlap(string path, IEnumerable<TensorView> tensors)
    {
        TensorView? previous = null;
        foreach (TensorView t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset))
        {
            if (previous != null && t.Offset < previous.Offset + previous.ByteLength)
                throw new GemmaException($"{path}: tensors '{previous.Name}' and '{t.Name}' overlap.");
            previous = t;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
