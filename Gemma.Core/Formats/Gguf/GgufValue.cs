using System.Globalization;

namespace Gemma.Core.Formats.Gguf;

/// <summary>GGUF metadata value types (<c>enum gguf_metadata_value_type</c>, uint32 on disk).</summary>
internal enum GgufValueType : uint
{
    /// <summary>8-bit unsigned integer.</summary>
    UInt8 = 0,
    /// <summary>8-bit signed integer.</summary>
    Int8 = 1,
    /// <summary>16-bit unsigned little-endian integer.</summary>
    UInt16 = 2,
    /// <summary>16-bit signed little-endian integer.</summary>
    Int16 = 3,
    /// <summary>32-bit unsigned little-endian integer.</summary>
    UInt32 = 4,
    /// <summary>32-bit signed little-endian integer.</summary>
    Int32 = 5,
    /// <summary>IEEE float32.</summary>
    Float32 = 6,
    /// <summary>One byte, 0 = false, 1 = true (anything else is invalid).</summary>
    Bool = 7,
    /// <summary>uint64 byte length, then UTF-8 bytes (no terminator).</summary>
    String = 8,
    /// <summary>uint32 element type, uint64 element count, then the elements (may nest).</summary>
    Array = 9,
    /// <summary>64-bit unsigned little-endian integer.</summary>
    UInt64 = 10,
    /// <summary>64-bit signed little-endian integer.</summary>
    Int64 = 11,
    /// <summary>IEEE float64.</summary>
    Float64 = 12,
}

/// <summary>
/// One GGUF metadata value: a scalar, a string or an array. Arrays are held as typed .NET arrays
/// (<c>byte[]</c>, <c>sbyte[]</c>, <c>ushort[]</c>, <c>short[]</c>, <c>uint[]</c>, <c>int[]</c>,
/// <c>float[]</c>, <c>bool[]</c>, <c>string[]</c>, <c>ulong[]</c>, <c>long[]</c>, <c>double[]</c>, and
/// <c>GgufValue[]</c> for arrays of arrays). Values are immutable: the array accessors return copies.
/// </summary>
internal sealed class GgufValue
{
    private readonly object _value;

    private GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        _value = value;
    }

    /// <summary>The value's type.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of the elements; otherwise equal to <see cref="Type"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>True for arrays.</summary>
    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>Number of elements of an array (0 for scalars and strings).</summary>
    public int ArrayLength => _value is Array a && IsArray ? a.Length : 0;

    /// <summary>
    /// The boxed scalar (<c>byte</c> … <c>double</c>, <c>bool</c>), the <c>string</c>, or — for arrays — a
    /// copy of the typed array described on <see cref="GgufValue"/>.
    /// </summary>
    public object Value => _value is Array a ? a.Clone() : _value;

    internal object RawValue => _value;

    /// <summary>Creates a uint8 value.</summary>
    public static GgufValue FromUInt8(byte value) => new(GgufValueType.UInt8, GgufValueType.UInt8, value);
    /// <summary>Creates an int8 value.</summary>
    public static GgufValue FromInt8(sbyte value) => new(GgufValueType.Int8, GgufValueType.Int8, value);
    /// <summary>Creates a uint16 value.</summary>
    public static GgufValue FromUInt16(ushort value) => new(GgufValueType.UInt16, GgufValueType.UInt16, value);
    /// <summary>Creates an int16 value.</summary>
    public static GgufValue FromInt16(short value) => new(GgufValueType.Int16, GgufValueType.Int16, value);
    /// <summary>Creates a uint32 value.</summary>
    public static GgufValue FromUInt32(uint value) => new(GgufValueType.UInt32, GgufValueType.UInt32, value);
    /// <summary>Creates an int32 value.</summary>
    public static GgufValue FromInt32(int value) => new(GgufValueType.Int32, GgufValueType.Int32, value);
    /// <summary>Creates a float32 value.</summary>
    public static GgufValue FromSingle(float value) => new(GgufValueType.Float32, GgufValueType.Float32, value);
    /// <summary>Creates a bool value.</summary>
    public static GgufValue FromBoolean(bool value) => new(GgufValueType.Bool, GgufValueType.Bool, value);
    /// <summary>Creates a uint64 value.</summary>
    public static GgufValue FromUInt64(ulong value) => new(GgufValueType.UInt64, GgufValueType.UInt64, value);
    /// <summary>Creates an int64 value.</summary>
    public static GgufValue FromInt64(long value) => new(GgufValueType.Int64, GgufValueType.Int64, value);
    /// <summary>Creates a float64 value.</summary>
    public static GgufValue FromDouble(double value) => new(GgufValueType.Float64, GgufValueType.Float64, value);

    /// <summary>Creates a string value.</summary>
    public static GgufValue FromString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(GgufValueType.String, GgufValueType.String, value);
    }

    /// <summary>Creates a uint8 array (the items are copied).</summary>
    public static GgufValue FromArray(ReadOnlySpan<byte> items) => Arr(GgufValueType.UInt8, items.ToArray());
    /// <summary>Creates an int8 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<sbyte> items) => Arr(GgufValueType.Int8, items.ToArray());
    /// <summary>Creates a uint16 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<ushort> items) => Arr(GgufValueType.UInt16, items.ToArray());
    /// <summary>Creates an int16 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<short> items) => Arr(GgufValueType.Int16, items.ToArray());
    /// <summary>Creates a uint32 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<uint> items) => Arr(GgufValueType.UInt32, items.ToArray());
    /// <summary>Creates an int32 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<int> items) => Arr(GgufValueType.Int32, items.ToArray());
    /// <summary>Creates a float32 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<float> items) => Arr(GgufValueType.Float32, items.ToArray());
    /// <summary>Creates a bool array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<bool> items) => Arr(GgufValueType.Bool, items.ToArray());
    /// <summary>Creates a uint64 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<ulong> items) => Arr(GgufValueType.UInt64, items.ToArray());
    /// <summary>Creates an int64 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<long> items) => Arr(GgufValueType.Int64, items.ToArray());
    /// <summary>Creates a float64 array.</summary>
    public static GgufValue FromArray(ReadOnlySpan<double> items) => Arr(GgufValueType.Float64, items.ToArray());

    /// <summary>Creates a string array (no element may be null).</summary>
    public static GgufValue FromArray(ReadOnlySpan<string> items)
    {
        foreach (string s in items) ArgumentNullException.ThrowIfNull(s, nameof(items));
        return Arr(GgufValueType.String, items.ToArray());
    }

    /// <summary>Creates an array of arrays; every element must itself be an array value.</summary>
    public static GgufValue FromArray(ReadOnlySpan<GgufValue> arrays)
    {
        foreach (GgufValue v in arrays)
        {
            ArgumentNullException.ThrowIfNull(v, nameof(arrays));
            if (!v.IsArray) throw new ArgumentException("Elements of an array of arrays must be arrays.", nameof(arrays));
        }
        return Arr(GgufValueType.Array, arrays.ToArray());
    }

    internal static GgufValue Arr(GgufValueType elementType, Array items) => new(GgufValueType.Array, elementType, items);
    internal static GgufValue Scalar(GgufValueType type, object value) => new(type, type, value);

    /// <summary>The value as an integer if it is of any integer type (bools are not integers).</summary>
    internal bool TryGetInteger(out Int128 value)
    {
        if (IsArray) { value = 0; return false; }
        return TryInteger(_value, out value);
    }

    internal static bool TryInteger(object boxed, out Int128 value)
    {
        switch (boxed)
        {
            case byte v: value = v; return true;
            case sbyte v: value = v; return true;
            case ushort v: value = v; return true;
            case short v: value = v; return true;
            case uint v: value = v; return true;
            case int v: value = v; return true;
            case ulong v: value = v; return true;
            case long v: value = v; return true;
            default: value = 0; return false;
        }
    }

    /// <summary>Type name as GGUF tools print it, e.g. <c>uint32</c> or <c>array[string]</c>.</summary>
    public string TypeName => IsArray ? $"array[{Name(ElementType)}]" : Name(Type);

    internal static string Name(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => "uint8", GgufValueType.Int8 => "int8",
        GgufValueType.UInt16 => "uint16", GgufValueType.Int16 => "int16",
        GgufValueType.UInt32 => "uint32", GgufValueType.Int32 => "int32",
        GgufValueType.Float32 => "float32", GgufValueType.Bool => "bool",
        GgufValueType.String => "string", GgufValueType.Array => "array",
        GgufValueType.UInt64 => "uint64", GgufValueType.Int64 => "int64",
        GgufValueType.Float64 => "float64",
        _ => $"type {(uint)type}",
    };

    /// <summary>A short human-readable rendering (arrays show their type and length).</summary>
    public override string ToString() => _value switch
    {
        Array a => $"{TypeName} ({a.Length} elements)",
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => _value.ToString() ?? "",
    };
}
