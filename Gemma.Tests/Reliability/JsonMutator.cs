using System.Text;
using System.Text.Json;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Structure-aware mutations of a JSON document: it locates every value (scalars and containers) and every object
/// member, then replaces values with troublesome ones (wrong types, nulls, huge, negative and overflowing numbers),
/// nests them deeply, blows them up, duplicates or removes members, flips bits, sets bytes and truncates.
/// Deterministic for a seed.
/// </summary>
internal sealed class JsonMutator
{
    private readonly byte[] _json;
    private readonly List<(int Start, int End)> _values = [];
    private readonly List<(int Start, int End)> _members = [];

    public JsonMutator(byte[] json)
    {
        _json = json;
        var reader = new Utf8JsonReader(json);
        var open = new Stack<(int Start, int Name)>();
        int name = -1;
        while (reader.Read())
        {
            int start = (int)reader.TokenStartIndex, end = (int)reader.BytesConsumed;
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName: name = start; break;
                case JsonTokenType.StartObject or JsonTokenType.StartArray: open.Push((start, name)); name = -1; break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    (int s, int n) = open.Pop();
                    Add(s, end, n);
                    break;
                default: Add(start, end, name); name = -1; break;
            }
        }
    }

    public int ValueCount => _values.Count;

    private void Add(int start, int end, int name)
    {
        _values.Add((start, end));
        if (name >= 0) _members.Add((name, end));
    }

    /// <summary><paramref name="count"/> mutated documents.</summary>
    public IEnumerable<(string Label, byte[] Bytes)> Cases(int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            (string label, byte[] bytes) = One(rng);
            yield return ($"seed {seed} #{i} {label}", bytes);
        }
    }

    private (string, byte[]) One(Random rng)
    {
        (int vs, int ve) = _values[rng.Next(_values.Count)];
        switch (rng.Next(11))
        {
            case 0:
            case 1:
            case 2:
                {
                    string value = Mutate.InterestingJsonValues[rng.Next(Mutate.InterestingJsonValues.Length)];
                    return ($"value@{vs} := {Short(value)}", Mutate.Splice(_json, vs, ve - vs, Encoding.UTF8.GetBytes(value)));
                }
            case 3:
                {
                    int flips = 1 + rng.Next(4);
                    return ($"{flips} bit flips", Mutate.FlipBits(_json, rng, 0, _json.Length, flips));
                }
            case 4:
                {
                    int n = 1 + rng.Next(3);
                    return ($"{n} bytes set", Mutate.SetBytes(_json, rng, 0, _json.Length, n));
                }
            case 5:
                {
                    int at = rng.Next(_json.Length);
                    return ($"truncated at {at}", _json.AsSpan(0, at).ToArray());
                }
            case 6:
                {
                    int depth = new[] { 20, 40, 70, 300, 5000, 100_000 }[rng.Next(6)];
                    bool balanced = rng.Next(3) != 0;
                    string inner = Encoding.UTF8.GetString(_json, vs, ve - vs);
                    string nested = new string('[', depth) + inner + (balanced ? new string(']', depth) : "");
                    return ($"value@{vs} nested {depth} deep{(balanced ? "" : " unbalanced")}", Mutate.Splice(_json, vs, ve - vs, Encoding.UTF8.GetBytes(nested)));
                }
            case 7:
                {
                    int size = new[] { 1000, 100_000, 2_000_000 }[rng.Next(3)];
                    string huge = rng.Next(2) == 0
                        ? "\"" + new string('a', size) + "\""
                        : "[" + string.Join(",", Enumerable.Repeat(rng.Next(2) == 0 ? "7" : "-1", size / 2)) + "]";
                    return ($"value@{vs} := huge {huge[0]} of {size}", Mutate.Splice(_json, vs, ve - vs, Encoding.UTF8.GetBytes(huge)));
                }
            case 8 when _members.Count > 0:
                {
                    (int ms, int me) = _members[rng.Next(_members.Count)];
                    byte[] member = _json.AsSpan(ms, me - ms).ToArray();
                    int copies = rng.Next(4) == 0 ? 1000 : 1;
                    var insert = new List<byte>();
                    for (int c = 0; c < copies; c++) { insert.AddRange(member); insert.Add((byte)','); }
                    return ($"member@{ms} duplicated ×{copies}", Mutate.Splice(_json, ms, 0, insert.ToArray()));
                }
            case 9 when _members.Count > 0:
                {
                    (int ms, int me) = _members[rng.Next(_members.Count)];
                    int end = me < _json.Length && _json[me] == (byte)',' ? me + 1 : me;
                    return ($"member@{ms} removed", Mutate.Splice(_json, ms, end - ms, []));
                }
            default:
                {
                    (int os, int oe) = _values[rng.Next(_values.Count)];
                    return ($"value@{vs} := value@{os}", Mutate.Splice(_json, vs, ve - vs, _json.AsSpan(os, oe - os)));
                }
        }
    }

    private static string Short(string s) => s.Length > 24 ? s[..24] + "…" : s;
}
