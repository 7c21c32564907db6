namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// The write-only stream handed to a <see cref="GgufTensorDataSource"/>: passes bytes through to the file and
/// refuses to go past the tensor's byte size, so a faulty source cannot overwrite the next tensor.
/// </summary>
internal sealed class BoundedWriteStream(Stream inner, long limit, string fileName, string tensorName) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length > limit - Written)
            throw new GemmaException(
                $"{fileName}: the data source of tensor '{tensorName}' wrote more than the tensor's {limit} bytes");
        inner.Write(buffer);
        Written += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void WriteByte(byte value) => Write([value]);
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
