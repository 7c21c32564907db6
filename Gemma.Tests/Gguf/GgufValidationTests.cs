using Gemma.Kernels;
using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>Hand-made broken files: each must fail with a <see cref="GemmaException"/> that names the file and the problem.</summary>
[Category("Gguf")]
public class GgufValidationTests
{
    private const uint F32 = (uint)GgmlType.F32;
    private const uint TString = (uint)GgufValueType.String, TArray = (uint)GgufValueType.Array, TBool = (uint)GgufValueType.Bool;
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = GgufTestFiles.NewTempDirectory();
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    private void AssertRejected(byte[] bytes, params string[] messageParts)
    {
        string path = Path.Combine(_dir, "model.gguf");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<GemmaException>(() => GgufFile.Open(path).Dispose())!;
        Assert.That(e.Message, Does.StartWith("model.gguf: "));
        foreach (string part in messageParts) Assert.That(e.Message, Does.Contain(part));
    }

    [Test]
    public void MissingFile() =>
        Assert.That(() => GgufFile.Open(Path.Combine(_dir, "absent.gguf")),
            Throws.TypeOf<GemmaException>().With.Message.StartsWith("absent.gguf: cannot open"));

    [Test] public void EmptyFile() => AssertRejected([], "0 bytes, too short");
    [Test] public void BadMagic() => AssertRejected(new RawGguf().Bytes("GGML"u8).U32(3).U64(0).U64(0).ToArray(), "not a GGUF file");
    [Test] public void Version1() => AssertRejected(RawGguf.Header(0, 0, version: 1).ToArray(), "version 1 is not supported");
    [Test] public void Version4() => AssertRejected(RawGguf.Header(0, 0, version: 4).ToArray(), "unsupported GGUF version 4");
    [Test] public void BigEndian() => AssertRejected(RawGguf.Header(0, 0, version: 0x03000000).ToArray(), "big-endian");

    [Test]
    public void HugeKvCountIsRejectedBeforeAllocating() =>
        AssertRejected(RawGguf.Header(0, ulong.MaxValue).ToArray(), "metadata_kv_count 18446744073709551615 is impossible");

    [Test]
    public void HugeTensorCountIsRejectedBeforeAllocating() =>
        AssertRejected(RawGguf.Header(1ul << 40, 0).ToArray(), "tensor_count 1099511627776 is impossible");

    [Test]
    public void StringLengthPastEnd() =>
        AssertRejected(RawGguf.Header(0, 1).U64(1ul << 50).Bytes(new byte[16]).ToArray(), "metadata key #0", "claims 1125899906842624 bytes");

    [Test]
    public void HugeArrayLength() =>
        AssertRejected(RawGguf.Header(0, 1).Str("tokenizer.ggml.tokens").U32(TArray).U32(TString).U64(1ul << 60).U64(0).ToArray(),
            "metadata array 'tokenizer.ggml.tokens'", "claims 1152921504606846976 string elements");

    [Test]
    public void UnknownValueType() =>
        AssertRejected(RawGguf.Header(0, 1).Str("k").U32(13).U64(0).ToArray(), "metadata key 'k' has unknown value type 13");

    [Test]
    public void UnknownArrayElementType() =>
        AssertRejected(RawGguf.Header(0, 1).Str("k").U32(TArray).U32(99).U64(0).ToArray(), "unknown element type 99");

    [Test]
    public void BoolMustBeZeroOrOne() =>
        AssertRejected(RawGguf.Header(0, 1).Str("flag").U32(TBool).U8(2).ToArray(), "bool with byte value 2");

    [Test]
    public void InvalidUtf8IsRejected() =>
        AssertRejected(RawGguf.Header(0, 1).Str("k").U32(TString).Str([0x61, 0xC3, 0x28]).ToArray(), "metadata key 'k' value at offset", "not valid UTF-8");

    [Test]
    public void DuplicateKey() =>
        AssertRejected(RawGguf.Header(0, 2).KvU32("a", 1).KvU32("a", 2).ToArray(), "metadata key 'a'", "appears twice");

    [Test]
    public void ArraysNestedTooDeep()
    {
        var raw = RawGguf.Header(0, 1).Str("deep").U32(TArray);
        for (int i = 0; i < 20; i++) raw.U32(TArray).U64(1);
        AssertRejected(raw.U32(TBool).U64(0).ToArray(), "nests arrays deeper than 8");
    }

    [Test]
    public void AlignmentNotPowerOfTwo() =>
        AssertRejected(RawGguf.Header(0, 1).KvU32("general.alignment", 48).ToArray(), "general.alignment = 48 is not a nonzero power of two");

    [Test]
    public void AlignmentZero() => AssertRejected(RawGguf.Header(0, 1).KvU32("general.alignment", 0).ToArray(), "general.alignment = 0");

    [Test]
    public void AlignmentOfWrongType() =>
        AssertRejected(RawGguf.Header(0, 1).Str("general.alignment").U32(TString).Str("32").ToArray(), "'general.alignment' has type string");

    [TestCase(0u)]
    [TestCase(5u)]
    public void DimensionCountOutOfRange(uint nDims) =>
        AssertRejected(RawGguf.Header(1, 0).Str("t").U32(nDims).U64(1).U64(1).U64(1).U64(1).U64(1).U32(F32).U64(0).Data(64).ToArray(),
            $"tensor 't' has {nDims} dimensions");

    [Test] public void ZeroDimension() => AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 0, 4, 0).Data(64).ToArray(), "ne[1] = 0 is out of range");

    [Test]
    public void DimensionAboveInt32() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 0, 1ul << 31).Data(64).ToArray(), "ne[0] = 2147483648 is out of range");

    [Test]
    public void ElementCountOverflow() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 0, int.MaxValue, int.MaxValue, int.MaxValue).Data(64).ToArray(), "overflows 64 bits");

    [Test]
    public void ByteSizeOverflow() => // 2^62 elements fit in a long, 2^62 × 4 bytes do not
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 0, 1 << 30, 1 << 30, 4).Data(64).ToArray(), "overflows 64 bits");

    [TestCase(4u)]
    [TestCase(31u)]
    [TestCase(40u)]
    [TestCase(uint.MaxValue)]
    public void UnknownGgmlType(uint type) =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("blk.0.attn_q.weight", type, 0, 32).Data(64).ToArray(),
            $"tensor 'blk.0.attn_q.weight' has unknown ggml type id {type}");

    [Test]
    public void RowNotMultipleOfBlockSize() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("q", (uint)GgmlType.Q8_0, 0, 16, 2).Data(64).ToArray(), "rows of 16 elements, not a multiple of the block size 32");

    [Test]
    public void UnalignedOffset() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 8, 4).Data(64).ToArray(), "offset 8 is not a multiple of the alignment 32");

    [Test]
    public void DataPastEndOfFile()
    {
        byte[] bytes = RawGguf.Header(1, 0).Tensor("blk.3.attn_q.weight", F32, 32, 16).Data(64).ToArray();
        // data section starts at the aligned end of the infos; the tensor wants [start+32, +64) but only 64 data bytes exist
        AssertRejected(bytes, "tensor 'blk.3.attn_q.weight' data [offset", "64 bytes] extends past the end of the file", $"({bytes.Length} bytes)");
    }

    [Test]
    public void HugeOffset() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, 1ul << 62, 4).Data(64).ToArray(), "extends past the end of the file");

    [Test]
    public void OffsetAboveInt64() =>
        AssertRejected(RawGguf.Header(1, 0).Tensor("t", F32, ulong.MaxValue - 31, 4).Data(64).ToArray(), "out of range");

    [Test]
    public void OverlappingTensors() =>
        AssertRejected(RawGguf.Header(2, 0).Tensor("a", F32, 0, 16).Tensor("b", F32, 32, 16).Data(128).ToArray(), "tensor 'a' data", "overlaps tensor 'b'");

    [Test]
    public void DuplicateTensorName() =>
        AssertRejected(RawGguf.Header(2, 0).Tensor("a", F32, 0, 4).Tensor("a", F32, 32, 4).Data(64).ToArray(), "tensor 'a' appears twice");

    [Test]
    public void TruncatedTensorInfo() =>
        AssertRejected(RawGguf.Header(1, 0).Str("t").U32(2).U64(4).ToArray(), "tensor_count 1 is impossible");

    [Test]
    public void NonOverlappingOutOfOrderTensorsAreFine()
    {
        byte[] bytes = RawGguf.Header(2, 0).Tensor("a", F32, 32, 8).Tensor("b", F32, 0, 8).Data(64).ToArray();
        string path = Path.Combine(_dir, "ok.gguf");
        File.WriteAllBytes(path, bytes);
        using GgufFile f = GgufFile.Open(path);
        Assert.That(f.GetTensor("a").FileOffset - f.GetTensor("b").FileOffset, Is.EqualTo(32));
    }
}
