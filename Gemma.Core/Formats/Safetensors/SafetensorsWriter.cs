using Gemma.Kernels;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Gemma.Core.Formats.Safetensors;

/// <summary>One tensor to write: its header entry and a callback that streams exactly its bytes.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Type">Element type (F32, F16 or BF16).</param>
/// <param name="Shape">Shape, PyTorch order.</param>
/// <param name="WriteData">Writes the tensor's bytes, row-major little-endian.</param>
internal sealed record SafetensorsTensor(string Name, GgmlType Type, long[] Shape, Action<Stream> WriteData)
{
    /// <summary>Bytes of data.</summary>
    public long ByteLength => ElementTypes.Of(Type).TryByteSize(Shape.Aggregate(1L, (a, d) => checked(a * d)));
}

/// <summary>
/// Writes <c>.safetensors</c> files the way <c>save_pretrained</c> does (header padded with spaces to 8 bytes,
/// tensors in header order), streaming data so a multi-gigabyte file never sits in memory. The file appears under
/// its name only when complete: it is written to a temporary sibling and renamed.
/// </summary>
internal static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (and optional string metadata) to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        byte[] header = BuildHeader(tensors, metadata);
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (SafetensorsTensor t in tensors)
                {
                    long before = stream.Position;
                    t.WriteData(stream);
                    if (stream.Position - before != t.ByteLength)
                        throw new GemmaException($"{path}: tensor '{t.Name}' wrote {stream.Position - before} bytes, expected {t.ByteLength}.");
                }
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata != null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (SafetensorsTensor t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", SafetensorsFile.DTypes.TryGetValue(t.Type, out string? dtype) ? dtype
                    : throw new GemmaException($"safetensors cannot store {t.Type} (tensor '{t.Name}')."));
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += t.ByteLength;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (int)((buffer.Length + 7) / 8 * 8);
        byte[] header = new byte[padded];
        buffer.ToArray().CopyTo(header, 0);
        header.AsSpan((int)buffer.Length).Fill((byte)' ');
        return header;
    }
}
