namespace Gemma.Core.Generation;

/// <summary>
/// Finds stop sequences in streamed text. Text that could still be the start of a stop sequence is held back until
/// it either completes one (and is dropped with everything after it) or cannot any more (and is released).
/// </summary>
/// <remarks>
/// <see cref="PushSpan"/>/<see cref="FlushSpan"/> allocate nothing once the buffer has grown to the longest stop
/// sequence plus the longest piece pushed (the server's per-token path); <see cref="Push"/>/<see cref="Flush"/> wrap
/// them in strings.
/// </remarks>
internal sealed class StopSequenceMatcher
{
    private readonly string[] _stops;
    private char[] _buffer = new char[64];
    private int _start;  // held-back text is _buffer[_start .. _start + _held)
    private int _held;

    public StopSequenceMatcher(IReadOnlyList<string>? stops) => _stops = stops?.Where(s => s.Length > 0).ToArray() ?? [];

    /// <summary>True once a stop sequence was seen.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds text; returns the part that is safe to show (may be empty).</summary>
    public string Push(ReadOnlySpan<char> text) => new(PushSpan(text));

    /// <summary>
    /// Adds text; returns the part that is safe to show (may be empty). The span is valid until the next call
    /// (it may point into the matcher's buffer or into <paramref name="text"/>).
    /// </summary>
    public ReadOnlySpan<char> PushSpan(ReadOnlySpan<char> text)
    {
        if (Stopped) return default;
        if (_stops.Length == 0) return text;
        // The held-back text moves to the front (the span returned last time is no longer in use), then the new text.
        int length = _held + text.Length;
        if (_buffer.Length < length)
        {
            var grown = new char[Math.Max(length, _buffer.Length * 2)];
            _buffer.AsSpan(_start, _held).CopyTo(grown);
            _buffer = grown;
        }
        else
        {
            _buffer.AsSpan(_start, _held).CopyTo(_buffer);
        }
        text.CopyTo(_buffer.AsSpan(_held));
        ReadOnlySpan<char> all = _buffer.AsSpan(0, length);
        int cut = -1;
        foreach (string stop in _stops)
        {
            int at = all.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _start = _held = 0;
            return all[..cut];
        }
        // Hold back the longest suffix that is a proper prefix of some stop sequence.
        int hold = 0;
        foreach (string stop in _stops)
            for (int len = Math.Min(stop.Length - 1, all.Length); len > hold; len--)
                if (all[^len..].SequenceEqual(stop.AsSpan(0, len))) { hold = len; break; }
        _start = length - hold;
        _held = hold;
        return all[..^hold];
    }

    /// <summary>Ends the stream: releases held-back text (it did not complete a stop sequence).</summary>
    public string Flush() => new(FlushSpan());

    /// <summary><see cref="Flush"/> without the string: the span is valid until the next call.</summary>
    public ReadOnlySpan<char> FlushSpan()
    {
        ReadOnlySpan<char> rest = Stopped ? default : _buffer.AsSpan(_start, _held);
        _start = _held = 0;
        return rest;
    }
}
