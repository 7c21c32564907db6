using System.Buffers.Binary;

namespace Gemma.Core.Formats;

/// <summary>
/// A GGUF model appended to an executable, llamafile-style: one file to copy to an edge box. <c>gemma bundle</c>
/// writes it; at start-up the executable reads its own last <see cref="TrailerBytes"/> bytes and, when they are a
/// bundle trailer, maps the GGUF region read-only (<see cref="Gguf.GgufFile"/> validates it, bounded to the region).
/// <code>
/// [0, host_length)             the executable, unchanged
/// [host_length, model_offset)  zero padding: the GGUF starts on a 4 KiB boundary (page-aligned mapping)
/// [model_offset, +model_length) the GGUF file, byte for byte
/// trailer (40 bytes, little-endian):
///   u64 host_length   u64 model_offset   u64 model_length   u32 version (1)   u32 reserved (0)   8 bytes "GEMMABDL"
/// </code>
/// A file whose last 8 bytes are not the magic has no bundle (an ordinary executable, or one cut short: the
/// trailer is what a truncated copy loses first). A file that ends with the magic but whose trailer does not
/// describe exactly the bytes before it is corrupt, and that is an error, never a guess.
/// </summary>
internal static class ModelBundle
{
    public const int TrailerBytes = 40;
    public const uint Version = 1;
    public const int Alignment = 4096;
    public static ReadOnlySpan<byte> Magic => "GEMMABDL"u8;

    /// <summary>Where the bundled GGUF lies in its file.</summary>
    public readonly record struct Region(long HostLength, long ModelOffset, long ModelLength);

    /// <summary>
    /// The bundle at the end of <paramref name="path"/>, or null when it carries none (or cannot be read: an
    /// executable we cannot open is not a bundle). A trailer with the magic that is inconsistent is a <see cref="GemmaException"/>.
    /// </summary>
    public static Region? Find(string path)
    {
        Span<byte> trailer = stackalloc byte[TrailerBytes];
        long length;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            length = stream.Length;
            if (length < TrailerBytes) return null;
            stream.Position = length - TrailerBytes;
            stream.ReadExactly(trailer);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return null;
        }
        return Parse(trailer, length, path);
    }

    /// <summary>Reads a trailer (the last <see cref="TrailerBytes"/> bytes of a file of <paramref name="fileLength"/> bytes).</summary>
    public static Region? Parse(ReadOnlySpan<byte> trailer, long fileLength, string path)
    {
        if (trailer.Length != TrailerBytes || !trailer[32..].SequenceEqual(Magic)) return null;
        ulong host = BinaryPrimitives.ReadUInt64LittleEndian(trailer);
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..]);
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(trailer[24..]);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(trailer[28..]);
        string where = $"{path}: corrupt model bundle trailer";
        if (version != Version) throw new GemmaException($"{where}: version {version} (this gemma reads version {Version}).");
        if (reserved != 0) throw new GemmaException($"{where}: reserved field is {reserved}, expected 0.");
        ulong payloadEnd = (ulong)(fileLength - TrailerBytes);
        if (host > offset || offset > payloadEnd || length != payloadEnd - offset || length == 0)
            throw new GemmaException($"{where}: host {host} bytes, model at offset {offset} with {length} bytes, " +
                                     $"but the model must end where the trailer starts ({payloadEnd} bytes into a file of {fileLength}).");
        return new Region((long)host, (long)offset, (long)length);
    }

    /// <summary>
    /// Writes <paramref name="output"/>: the executable <paramref name="host"/> (without any bundle it already
    /// carries), padding, the GGUF <paramref name="model"/> and the trailer. Written to a temporary name and renamed
    /// when complete; the output keeps the host's Unix permissions (it stays executable).
    /// </summary>
    public static void Write(string host, string model, string output)
    {
        long hostLength = Find(host)?.HostLength ?? new FileInfo(host).Length;
        long modelLength = new FileInfo(model).Length;
        long modelOffset = (hostLength + Alignment - 1) / Alignment * Alignment;
        string temp = output + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var outStream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                using (var hostStream = new FileStream(host, FileMode.Open, FileAccess.Read, FileShare.Read))
                    CopyExactly(hostStream, outStream, hostLength, host);
                outStream.Write(new byte[modelOffset - hostLength]);
                using (var modelStream = new FileStream(model, FileMode.Open, FileAccess.Read, FileShare.Read))
                    CopyExactly(modelStream, outStream, modelLength, model);
                Span<byte> trailer = stackalloc byte[TrailerBytes];
                BinaryPrimitives.WriteUInt64LittleEndian(trailer, (ulong)hostLength);
                BinaryPrimitives.WriteUInt64LittleEndian(trailer[8..], (ulong)modelOffset);
                BinaryPrimitives.WriteUInt64LittleEndian(trailer[16..], (ulong)modelLength);
                BinaryPrimitives.WriteUInt32LittleEndian(trailer[24..], Version);
                BinaryPrimitives.WriteUInt32LittleEndian(trailer[28..], 0);
                Magic.CopyTo(trailer[32..]);
                outStream.Write(trailer);
            }
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, File.GetUnixFileMode(host) | UnixFileMode.UserExecute);
            File.Move(temp, output, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static void CopyExactly(Stream from, Stream to, long count, string path)
    {
        byte[] buffer = new byte[1 << 20];
        while (count > 0)
        {
            int n = from.Read(buffer, 0, (int)Math.Min(buffer.Length, count));
            if (n == 0) throw new GemmaException($"{path}: the file shrank while it was being copied.");
            to.Write(buffer, 0, n);
            count -= n;
        }
    }
}
