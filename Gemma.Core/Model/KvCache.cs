using System.Numerics.Tensors;
using Gemma.Core.Config;

namespace Gemma.Core.Model;

/// <summary>
/// Keys and values of every processed position, per layer, in float32 or IEEE half precision (<see cref="KvCacheType"/>;
/// attention reads either directly, widening half to float32 exactly).
/// Layout per layer: <c>K[kv_head, slot, head_dim]</c> and <c>V[kv_head, slot, head_dim]</c>, so that the keys one
/// head attends over are contiguous. Position p lives in slot <c>p % Capacity(layer)</c>: a ring buffer.
/// Global layers have capacity = context length (no wrap). Sliding layers keep only
/// <c>window + maxChunk − 1</c> slots: enough that while a chunk of up to maxChunk new positions is written, no
/// position still visible to a query of that chunk is overwritten (query p sees keys p − window + 1 … p).
/// Memory is reserved up front but pages are only touched as positions fill.
/// </summary>
internal sealed unsafe class KvCache : IDisposable
{
    private readonly NativeBuffer[] _keys;
    private readonly NativeBuffer[] _values;
    private readonly int[] _capacity;
    private readonly int[] _windows;
    private readonly int _headDim;

    /// <summary>Creates an empty cache for <paramref name="contextLength"/> positions processed in chunks of at most <paramref name="maxChunk"/>.</summary>
    public KvCache(GemmaConfig config, int contextLength, int maxChunk, KvCacheType type = KvCacheType.Float32)
    {
        if (!Enum.IsDefined(type)) throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown KV cache type.");
        Type = type;
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChunk, 1);
        ContextLength = contextLength;
        MaxChunk = maxChunk;
        KvHeads = config.NumKvHeads;
        _headDim = config.HeadDim;
        int layers = config.NumLayers;
        _keys = new NativeBuffer[layers];
        _values = new NativeBuffer[layers];
        _capacity = new int[layers];
        _windows = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            long window = config.AttentionWindow(l);
            _windows[l] = (int)Math.Min(window, int.MaxValue);
            _capacity[l] = (int)Math.Min(contextLength, window + maxChunk - 1);
            long bytes = (long)KvHeads * _capacity[l] * _headDim * BytesPerElement;
            _keys[l] = new NativeBuffer(bytes);
            _values[l] = new NativeBuffer(bytes);
        }
    }

    /// <summary>Most positions this cache can hold.</summary>
    public int ContextLength { get; }

    /// <summary>Most positions one forward pass may append (the sliding layers' ring buffers are sized for it).</summary>
    public int MaxChunk { get; }

    /// <summary>Key/value heads per layer.</summary>
    public int KvHeads { get; }

    /// <summary>Positions processed so far (the next token's position).</summary>
    public int Length { get; internal set; }

    /// <summary>Slots of layer <paramref name="layer"/>'s ring buffer.</summary>
    public int Capacity(int layer) => _capacity[layer];

    /// <summary>Bytes reserved for all layers.</summary>
    public long ReservedBytes => _keys.Sum(b => b.Length) * 2;

    /// <summary><c>[slot, head_dim]</c> keys of one KV head; <typeparamref name="T"/> is <see cref="float"/> or <see cref="Half"/> as <see cref="Type"/> says.</summary>
    public Span<T> Keys<T>(int layer, int kvHead) where T : unmanaged => Slab<T>(_keys[layer], layer, kvHead);

    /// <summary><c>[slot, head_dim]</c> values of one KV head (see <see cref="Keys{T}"/>).</summary>
    public Span<T> Values<T>(int layer, int kvHead) where T : unmanaged => Slab<T>(_values[layer], layer, kvHead);

    private Span<T> Slab<T>(NativeBuffer buffer, int layer, int kvHead) where T : unmanaged
    {
        if (sizeof(T) != BytesPerElement || (typeof(T) != typeof(float) && typeof(T) != typeof(Half)))
            throw new InvalidOperationException($"This cache stores {Type}, not {typeof(T).Name}.");
        int slab = _capacity[layer] * _headDim;
        return new Span<T>((T*)buffer.Pointer + (long)kvHead * slab, slab);
    }

    private const float HalfMax = 65504f;

    /// <summary>Stores one position's key and value of one KV head (float32 in, converted to the cache's type).</summary>
    internal void Write(int layer, int kvHead, int slot, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        if (Type == KvCacheType.Float16)
        {
            // Saturate to ±65504 (the largest finite half) instead of rounding to ±inf: attention reads halves with
            // F16ScaledRow, which requires finite data (a NaN stays NaN and reads as a finite value; the residual
            // stream carries that NaN to the logits anyway).
            Span<float> clamped = stackalloc float[_headDim];
            TensorPrimitives.Clamp(key, -HalfMax, HalfMax, clamped);
            TensorPrimitives.ConvertToHalf(clamped, Keys<Half>(layer, kvHead).Slice(slot * _headDim, _headDim));
            TensorPrimitives.Clamp(value, -HalfMax, HalfMax, clamped);
            TensorPrimitives.ConvertToHalf(clamped, Values<Half>(layer, kvHead).Slice(slot * _headDim, _headDim));
        }
        else
        {
            key.CopyTo(Keys<float>(layer, kvHead).Slice(slot * _headDim, _headDim));
            value.CopyTo(Values<float>(layer, kvHead).Slice(slot * _headDim, _headDim));
        }
    }

    /// <summary>Element type of the stored keys and values.</summary>
    public KvCacheType Type { get; }

    /// <summary>Bytes of one cached key or value element.</summary>
    public int BytesPerElement => Type == KvCacheType.Float16 ? 2 : sizeof(float);

    /// <summary>Bytes of keys and values that <paramref name="positions"/> positions occupy (what a context of that length touches).</summary>
    public long BytesFor(int positions)
    {
        long total = 0;
        for (int l = 0; l < _capacity.Length; l++) total += 2L * KvHeads * Math.Min(positions, _capacity[l]) * _headDim * BytesPerElement;
        return total;
    }

    /// <summary>
    /// Benchmarks only: makes the cache hold <paramref name="length"/> positions of pseudo-random keys and values
    /// (every slot written, so the pages are real), as if that many tokens had been processed. Attention's cost does
    /// not depend on the values, so decode at a long position can be timed without prefilling thousands of tokens.
    /// </summary>
    internal void FillForBenchmark(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, ContextLength);
        uint state = 12345;
        Span<float> k = stackalloc float[_headDim], v = stackalloc float[_headDim];
        for (int l = 0; l < _capacity.Length; l++)
            for (int kh = 0; kh < KvHeads; kh++)
                for (int slot = 0; slot < Math.Min(length, _capacity[l]); slot++)
                {
                    for (int i = 0; i < _headDim; i++)
                    {
                        state = state * 1664525 + 1013904223;
                        k[i] = (int)state * (1f / int.MaxValue);
                        v[i] = (int)(state * 2654435761u) * (1f / int.MaxValue);
                    }
                    Write(l, kh, slot, k, v);
                }
        Length = length;
    }

    /// <summary>Forgets every position (memory stays reserved).</summary>
    public void Clear() => Length = 0;

    /// <summary>
    /// True when positions from <paramref name="length"/> on can be forgotten while keeping the prefix usable: on a
    /// sliding layer, the keys a query at <paramref name="length"/> will see (<c>length − window + 1 …</c>) must not
    /// have been overwritten by later positions of the ring. A length of 0 (nothing kept) is always possible.
    /// </summary>
    /// <remarks>
    /// The lengths that can be kept are 0 and one unbroken range <c>[shortest, Length]</c>: the oldest visible
    /// position <c>length − window + 1</c> grows with <paramref name="length"/>, so once it is intact every longer
    /// prefix is too. With a ring of <c>window + maxChunk − 1</c> slots that range spans the last <c>maxChunk</c>
    /// positions at least, so a cache can always be rewound by up to one prefill chunk.
    /// </remarks>
    public bool CanTruncateTo(int length)
    {
        if (length >= Length || length == 0) return true;
        if (length < 0) return false;
        for (int l = 0; l < _capacity.Length; l++)
        {
            long oldest = Math.Max(0, length - (long)_windows[l] + 1);
            if (oldest + _capacity[l] < Length) return false; // slot of `oldest` was reused by position oldest + capacity
        }
        return true;
    }

    /// <summary>
    /// The longest prefix of at most <paramref name="length"/> positions that <see cref="Truncate"/> can keep:
    /// <paramref name="length"/> itself (capped at <see cref="Length"/>) when it is intact, else 0 (see the remarks of
    /// <see cref="CanTruncateTo"/>: no shorter non-empty prefix is intact either).
    /// </summary>
    internal int LongestKeepablePrefix(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        length = Math.Min(length, Length);
        return CanTruncateTo(length) ? length : 0;
    }

    /// <summary>
    /// Forgets positions from <paramref name="length"/> on (keeps a shared prefix for reuse); 0 forgets everything,
    /// like <see cref="Clear"/>. A length at or beyond <see cref="Length"/> changes nothing.
    /// </summary>
    /// <exception cref="GemmaException">The prefix is no longer intact in a sliding layer (see <see cref="CanTruncateTo"/>).</exception>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (!CanTruncateTo(length)) throw new GemmaException($"Cannot rewind the KV cache from {Length} to {length} positions: sliding-window slots were reused.");
        if (length < Length) Length = length;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (NativeBuffer b in _keys) b.Dispose();
        foreach (NativeBuffer b in _values) b.Dispose();
    }
}
