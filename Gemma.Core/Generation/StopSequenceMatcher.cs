using System.Text;

namespace Gemma.Core.Generation;

/// <summary>
/// Finds stop sequences in streamed text. Text that could still be the start of a stop sequence is held back until
/// it either completes one (and is dropped with everything after it) or cannot any more (and is released).
/// </summary>
internal sealed class StopSequenceMatcher
{
    private readonly string[] _stops;
    private readonly StringBuilder _pending = new();

    public StopSequenceMatcher(IReadOnlyList<string>? stops) => _stops = stops?.Where(s => s.Length > 0).ToArray() ?? [];

    /// <summary>True once a stop sequence was seen.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds text; returns the part that is safe to show (may be empty).</summary>
    public string Push(ReadOnlySpan<char> text)
    {
        if (Stopped) return "";
        if (_stops.Length == 0) return new string(text);
        _pending.Append(text);
        string all = _pending.ToString();
        int cut = -1;
        foreach (string stop in _stops)
        {
            int at = all.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending.Clear();
            return all[..cut];
        }
        // Hold back the longest suffix that is a proper prefix of some stop sequence.
        int hold = 0;
        foreach (string stop in _stops)
            for (int len = Math.Min(stop.Length - 1, all.Length); len > hold; len--)
                if (all.AsSpan(all.Length - len).SequenceEqual(stop.AsSpan(0, len))) { hold = len; break; }
        _pending.Clear().Append(all, all.Length - hold, hold);
        return all[..^hold];
    }

    /// <summary>Ends the stream: releases held-back text (it did not complete a stop sequence).</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _pending.ToString();
        _pending.Clear();
        return rest;
    }
}
