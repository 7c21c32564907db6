using Gemma.Core.Model;
using Gemma.Kernels;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// The tensors of a GGUF file as an <see cref="ITensorSource"/> with PyTorch-order shapes.
/// F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K tensors are used in place (zero-copy from the mapping) — all a
/// Q4_K_M, Q5_K_M, Q6_K, Q4_0 or Q8_0 file of Gemma contains. The other ggml types that <see cref="GgmlDequantize"/>
/// can decode (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K) are decoded once at load and re-encoded as Q8_0 in memory (rows that are
/// not a multiple of 32 become F32), so they run on the int8 kernels.
/// </summary>
internal sealed unsafe class GgufCheckpoint : ITensorSource
{
    private readonly GgufFile _file;
    private readonly List<NativeBuffer> _converted = new();
    private readonly Dictionary<string, TensorView> _tensors = new(StringComparer.Ordinal);

    private GgufCheckpoint(GgufFile file)
    {
        _file = file;
        foreach (GgufTensorInfo t in file.Tensors) _tensors.Add(t.Name, View(t));
    }

    /// <summary>The underlying file (metadata for the config and the tokenizer).</summary>
    public GgufFile File => _file;

    /// <inheritdoc />
    public string Location => _file.Path;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorView> Tensors => _tensors;

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public static GgufCheckpoint Open(string path) => Open(GgufFile.Open(path));

    /// <summary>Wraps an opened <paramref name="file"/>, which the checkpoint then owns (disposed on failure too).</summary>
    internal static GgufCheckpoint Open(GgufFile file)
    {
        try
        {
            return new GgufCheckpoint(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private TensorView View(GgufTensorInfo t)
    {
        long[] shape = t.GetPyTorchShape();
        TensorDType? direct = t.Type switch
        {
            GgmlType.F32 => TensorDType.F32,
            GgmlType.F16 => TensorDType.F16,
            GgmlType.BF16 => TensorDType.BF16,
            GgmlType.Q8_0 => TensorDType.Q8_0,
            GgmlType.Q4_0 => TensorDType.Q4_0,
            GgmlType.Q4_K => TensorDType.Q4_K,
            GgmlType.Q5_K => TensorDType.Q5_K,
            GgmlType.Q6_K => TensorDType.Q6_K,
            _ => null,
        };
        if (direct is TensorDType type)
            return new TensorView(t.Name, type, shape, _file.Path, t.FileOffset, t.DataPointer, t.ByteSize);
        if (!GgmlDequantize.IsSupported(t.Type))
            throw new GemmaException($"{_file.Path}: tensor '{t.Name}' has ggml type {t.Type}, which this engine cannot decode.");
        return Requantize(t, shape);
    }

    /// <summary>Decodes a block-quantized tensor row by row and stores it as Q8_0 (or F32 for rows not divisible by 32).</summary>
    private TensorView Requantize(GgufTensorInfo t, long[] shape)
    {
        long rows = t.RowCount, cols = t.RowLength;
        bool q8 = cols % Q8_0.BlockSize == 0;
        TensorDType type = q8 ? TensorDType.Q8_0 : TensorDType.F32;
        long rowBytes = q8 ? cols / Q8_0.BlockSize * Q8_0.BlockBytes : cols * 4;
        var buffer = new NativeBuffer(rows * rowBytes);
        _converted.Add(buffer);
        var row = new float[cols];
        for (long r = 0; r < rows; r++)
        {
            t.DequantizeRows(r, row);
            var destination = new Span<byte>(buffer.Pointer + r * rowBytes, (int)rowBytes);
            if (q8) Quantizer.QuantizeQ8_0(row, destination);
            else System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()).CopyTo(destination);
        }
        return new TensorView(t.Name, type, shape, _file.Path, -1, buffer.Pointer, rows * rowBytes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _file.Dispose();
        foreach (NativeBuffer b in _converted) b.Dispose();
        _converted.Clear();
    }
}
