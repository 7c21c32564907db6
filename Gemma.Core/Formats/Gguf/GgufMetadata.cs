using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Gemma.Core.Formats.Gguf;

/// <summary>
/// The metadata key/value pairs of a GGUF file, in file order, with typed accessors.
/// <para>
/// Getters throw <see cref="GemmaException"/> (naming the file and key) when the key is missing or its value
/// cannot be converted. <c>TryGet…</c> returns false only when the key is <b>absent</b>; a key that is present
/// with an incompatible type or an out-of-range value is a bad file and still throws, so a broken value is
/// never silently replaced by a default.
/// </para>
/// <para>
/// Integer getters accept any GGUF integer type whose value fits (a count stored as uint32 or uint64 reads
/// the same); float getters accept float32 and float64 (and integers); bools are not integers.
/// </para>
/// </summary>
internal sealed class GgufMetadata : IReadOnlyDictionary<string, GgufValue>
{
    private readonly Dictionary<string, GgufValue> _byKey;
    private readonly List<string> _order;
    private readonly string _fileName;

    internal GgufMetadata(string fileName, int capacity)
    {
        _fileName = fileName;
        _byKey = new Dictionary<string, GgufValue>(capacity, StringComparer.Ordinal);
        _order = new List<string>(capacity);
    }

    /// <summary>Adds a pair; false if the key is already present.</summary>
    internal bool TryAdd(string key, GgufValue value)
    {
        if (!_byKey.TryAdd(key, value)) return false;
        _order.Add(key);
        return true;
    }

    /// <summary>The value of <paramref name="key"/>; a missing key is a <see cref="GemmaException"/> (not KeyNotFoundException).</summary>
    public GgufValue this[string key] => TryGetValue(key, out GgufValue? v) ? v : throw Missing(key);
    /// <inheritdoc/>
    public IEnumerable<string> Keys => _order;
    /// <inheritdoc/>
    public IEnumerable<GgufValue> Values => _order.Select(k => _byKey[k]);
    /// <inheritdoc/>
    public int Count => _order.Count;
    /// <inheritdoc/>
    public bool ContainsKey(string key) => _byKey.ContainsKey(key);
    /// <inheritdoc/>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out GgufValue value) => _byKey.TryGetValue(key, out value);
    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, GgufValue>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, GgufValue>(k, _byKey[k])).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The string value of <paramref name="key"/>.</summary>
    public string GetString(string key) => TryGetString(key, out string? v) ? v : throw Missing(key);

    /// <summary>The string value of <paramref name="key"/>, false if absent.</summary>
    public bool TryGetString(string key, [MaybeNullWhen(false)] out string value)
    {
        value = null;
        if (!_byKey.TryGetValue(key, out GgufValue? v)) return false;
        value = v.RawValue as string ?? throw WrongType(key, v, "string");
        return true;
    }

    /// <summary>The bool value of <paramref name="key"/>.</summary>
    public bool GetBoolean(string key) => TryGetBoolean(key, out bool v) ? v : throw Missing(key);

    /// <summary>The bool value of <paramref name="key"/>, false if absent.</summary>
    public bool TryGetBoolean(string key, out bool value)
    {
        value = false;
        if (!_byKey.TryGetValue(key, out GgufValue? v)) return false;
        value = v.RawValue is bool b && !v.IsArray ? b : throw WrongType(key, v, "bool");
        return true;
    }

    /// <summary>An integer of any GGUF integer type that fits in uint32.</summary>
    public uint GetUInt32(string key) => TryGetUInt32(key, out uint v) ? v : throw Missing(key);
    /// <summary>An integer that fits in uint32; false if absent.</summary>
    public bool TryGetUInt32(string key, out uint value) { bool found = TryInt(key, uint.MinValue, uint.MaxValue, "uint32", out Int128 i); value = (uint)i; return found; }
    /// <summary>An integer of any GGUF integer type that fits in int32.</summary>
    public int GetInt32(string key) => TryGetInt32(key, out int v) ? v : throw Missing(key);
    /// <summary>An integer that fits in int32; false if absent.</summary>
    public bool TryGetInt32(string key, out int value) { bool found = TryInt(key, int.MinValue, int.MaxValue, "int32", out Int128 i); value = (int)i; return found; }
    /// <summary>An integer of any GGUF integer type that fits in uint64.</summary>
    public ulong GetUInt64(string key) => TryGetUInt64(key, out ulong v) ? v : throw Missing(key);
    /// <summary>An integer that fits in uint64; false if absent.</summary>
    public bool TryGetUInt64(string key, out ulong value) { bool found = TryInt(key, ulong.MinValue, ulong.MaxValue, "uint64", out Int128 i); value = (ulong)i; return found; }
    /// <summary>An integer of any GGUF integer type that fits in int64.</summary>
    public long GetInt64(string key) => TryGetInt64(key, out long v) ? v : throw Missing(key);
    /// <summary>An integer that fits in int64; false if absent.</summary>
    public bool TryGetInt64(string key, out long value) { bool found = TryInt(key, long.MinValue, long.MaxValue, "int64", out Int128 i); value = (long)i; return found; }

    /// <summary>A float32 or float64 (narrowed) or integer value as float.</summary>
    public float GetSingle(string key) => TryGetSingle(key, out float v) ? v : throw Missing(key);
    /// <summary>A float32, float64 (narrowed) or integer value as float; false if absent.</summary>
    public bool TryGetSingle(string key, out float value) { bool found = TryGetDouble(key, out double d); value = (float)d; return found; }
    /// <summary>A float64, float32 or integer value as double.</summary>
    public double GetDouble(string key) => TryGetDouble(key, out double v) ? v : throw Missing(key);

    /// <summary>A float64, float32 or integer value as double; false if absent.</summary>
    public bool TryGetDouble(string key, out double value)
    {
        value = 0;
        if (!_byKey.TryGetValue(key, out GgufValue? v)) return false;
        if (v.IsArray) throw WrongType(key, v, "float");
        value = v.RawValue switch
        {
            float f => f,
            double d => d,
            _ when v.TryGetInteger(out Int128 i) => (double)i,
            _ => throw WrongType(key, v, "float"),
        };
        return true;
    }

    /// <summary>Number of elements of the array at <paramref name="key"/>.</summary>
    public int GetArrayLength(string key)
    {
        GgufValue v = this[key];
        return v.IsArray ? v.ArrayLength : throw WrongType(key, v, "array");
    }

    /// <summary>A copy of a string array.</summary>
    public string[] GetStringArray(string key)
    {
        GgufValue v = this[key];
        return v.IsArray && v.RawValue is string[] s ? (string[])s.Clone() : throw WrongType(key, v, "array[string]");
    }

    /// <summary>A float32 or float64 array as float[] (a copy).</summary>
    public float[] GetSingleArray(string key)
    {
        GgufValue v = this[key];
        return v.RawValue switch
        {
            float[] f when v.IsArray => (float[])f.Clone(),
            double[] d when v.IsArray => Array.ConvertAll(d, x => (float)x),
            _ => throw WrongType(key, v, "array[float32]"),
        };
    }

    /// <summary>An array of any integer type as int[], every element range-checked (a copy).</summary>
    public int[] GetInt32Array(string key) => IntArray(key, int.MinValue, int.MaxValue, "int32", i => (int)i);

    /// <summary>An array of any integer type as long[], every element range-checked (a copy).</summary>
    public long[] GetInt64Array(string key) => IntArray(key, long.MinValue, long.MaxValue, "int64", i => (long)i);

    /// <summary>A bool array (a copy).</summary>
    public bool[] GetBooleanArray(string key)
    {
        GgufValue v = this[key];
        return v.IsArray && v.RawValue is bool[] b ? (bool[])b.Clone() : throw WrongType(key, v, "array[bool]");
    }

    private T[] IntArray<T>(string key, Int128 min, Int128 max, string name, Func<Int128, T> convert)
    {
        GgufValue v = this[key];
        if (!v.IsArray || v.RawValue is not Array a || v.ElementType is GgufValueType.Float32 or GgufValueType.Float64
            or GgufValueType.Bool or GgufValueType.String or GgufValueType.Array)
            throw WrongType(key, v, $"array of integers");
        var result = new T[a.Length];
        for (int i = 0; i < result.Length; i++)
        {
            GgufValue.TryInteger(a.GetValue(i)!, out Int128 x);
            if (x < min || x > max)
                throw new GemmaException($"{_fileName}: metadata key '{key}' element {i} = {x} does not fit in {name}");
            result[i] = convert(x);
        }
        return result;
    }

    private bool TryInt(string key, Int128 min, Int128 max, string name, out Int128 value)
    {
        value = 0;
        if (!_byKey.TryGetValue(key, out GgufValue? v)) return false;
        if (!v.TryGetInteger(out value)) throw WrongType(key, v, "integer");
        if (value < min || value > max)
            throw new GemmaException($"{_fileName}: metadata key '{key}' = {value} ({v.TypeName}) does not fit in {name}");
        return true;
    }

    private GemmaException Missing(string key) => new($"{_fileName}: metadata key '{key}' is missing");

    private GemmaException WrongType(string key, GgufValue v, string expected) =>
        new($"{_fileName}: metadata key '{key}' has type {v.TypeName}, expected {expected}");
}
