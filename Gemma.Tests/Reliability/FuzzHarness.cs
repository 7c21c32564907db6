using Gemma.Core;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>Thrown by a case's consistency check when a load succeeded but the result contradicts the input.</summary>
internal sealed class FuzzInconsistency(string message) : Exception(message);

/// <summary>
/// Runs fuzz cases against a loader. Each case runs on a thread-pool thread with a time limit; the bytes it
/// allocates on that thread are measured. A case passes when the loader either throws a <see cref="GemmaException"/>
/// whose message names the input file, or succeeds and its own consistency check (run inside the case) holds —
/// and in both cases finishes in time and allocates no more than <see cref="AllocationFactor"/> × the input size
/// + <see cref="AllocationSlack"/>. Anything else (another exception type, a hang, a giant allocation) is a defect.
/// </summary>
internal sealed class FuzzRun(string format)
{
    public const long AllocationFactor = 64;
    public const long AllocationSlack = 4L << 20;
    public static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(10);

    private readonly List<string> _defects = [];
    private readonly SortedSet<string> _kinds = new(StringComparer.Ordinal);

    public int Cases { get; private set; }
    public int Rejected { get; private set; }
    public int Loaded { get; private set; }
    public long MaxAllocated { get; private set; }
    public TimeSpan Slowest { get; private set; }

    /// <summary>Runs one case. <paramref name="load"/> performs the load and the consistency checks of a success.</summary>
    /// <param name="label">What was mutated (reported with a defect).</param>
    /// <param name="inputBytes">Size of the input the allocation bound is derived from.</param>
    /// <param name="mustName">Text every error message must contain (the file name).</param>
    /// <param name="load">The load; throws on rejection.</param>
    public void Case(string label, long inputBytes, string mustName, Action load)
    {
        Cases++;
        var task = Task.Run(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            long before = GC.GetAllocatedBytesForCurrentThread();
            Exception? error = null;
            try { load(); }
            catch (Exception e) { error = e; }
            return (Error: error, Allocated: GC.GetAllocatedBytesForCurrentThread() - before, clock.Elapsed);
        });
        if (!task.Wait(TimeLimit))
        {
            // The stuck thread cannot be stopped; report and end the run so that it does not pile up.
            Assert.Fail($"{format} fuzz: case '{label}' did not finish within {TimeLimit.TotalSeconds} s (hang). Earlier defects: {string.Join(" | ", _defects)}");
        }
        (Exception? error, long allocated, TimeSpan elapsed) = task.Result;
        MaxAllocated = Math.Max(MaxAllocated, allocated);
        if (elapsed > Slowest) Slowest = elapsed;
        long bound = AllocationFactor * inputBytes + AllocationSlack;
        if (allocated > bound)
            _kinds.Add($"allocation over the bound ({error?.GetType().Name ?? "loaded"})");
        if (allocated > bound)
            _defects.Add($"{label}: allocated {allocated:N0} bytes for {inputBytes:N0} input bytes (bound {bound:N0})");
        switch (error)
        {
            case null:
                Loaded++;
                break;
            case GemmaException g when !string.IsNullOrWhiteSpace(g.Message) && g.Message.Contains(mustName, StringComparison.Ordinal):
                Rejected++;
                break;
            case GemmaException g:
                _kinds.Add("message does not name the file");
                _defects.Add($"{label}: GemmaException whose message does not name '{mustName}': {g.Message}");
                break;
            case FuzzInconsistency f:
                _kinds.Add("inconsistent: " + f.Message);
                _defects.Add($"{label}: loaded but inconsistent: {f.Message}");
                break;
            default:
                _kinds.Add($"{error.GetType().Name} at {Frame(error)}");
                _defects.Add($"{label}: {error.GetType().Name} escaped: {error.Message} at {Frame(error)}");
                break;
        }
    }

    /// <summary>The innermost stack frame inside the library (where the escape happened).</summary>
    private static string Frame(Exception e) =>
        e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("Gemma.Core", StringComparison.Ordinal))?.Split(" in ")[0] ?? "?";

    /// <summary>Prints the tally and fails with the first defects, if any.</summary>
    public void AssertNoDefects(int minimumCases)
    {
        TestContext.Out.WriteLine($"{format}: {Cases} cases, {Rejected} rejected with GemmaException, {Loaded} loaded, " +
                                  $"{_defects.Count} defects; max allocation {MaxAllocated:N0} B; slowest case {Slowest.TotalMilliseconds:F0} ms");
        Assert.That(Cases, Is.GreaterThanOrEqualTo(minimumCases), "the generator produced fewer cases than planned");
        Assert.That(_defects, Is.Empty, $"{format}: {_defects.Count} defect(s), {_kinds.Count} kind(s):\n" + string.Join("\n", _kinds.Take(20)) + "\nfirst cases:\n" + string.Join("\n", _defects.Take(5)));
    }
}

/// <summary>Seeded byte- and text-level mutations shared by the fuzz suites.</summary>
internal static class Mutate
{
    public static readonly string[] InterestingJsonValues =
    [
        "-1", "0", "1", "-0", "1.5", "1e308", "-1e308", "1e400", "2147483647", "2147483648", "-2147483649",
        "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
        "123456789012345678901234567890", "null", "true", "false", "\"\"", "\"x\"", "\"7\"", "[]", "{}", "[1,2]",
        "[-1]", "[0]", "{\"a\":1}", "\"\\u0000\"", "\"\\ud800\"", "NaN", "\"BF16\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];

    public static byte[] FlipBits(byte[] source, Random rng, int start, int length, int flips)
    {
        byte[] b = (byte[])source.Clone();
        for (int i = 0; i < flips; i++) b[start + rng.Next(length)] ^= (byte)(1 << rng.Next(8));
        return b;
    }

    public static byte[] SetBytes(byte[] source, Random rng, int start, int length, int count)
    {
        byte[] b = (byte[])source.Clone();
        ReadOnlySpan<byte> special = [0, 0xFF, 0x7F, 0x80, (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)':', (byte)',', (byte)'-', (byte)'9', (byte)'e', (byte)'\\', (byte)' '];
        for (int i = 0; i < count; i++)
            b[start + rng.Next(length)] = rng.Next(2) == 0 ? special[rng.Next(special.Length)] : (byte)rng.Next(256);
        return b;
    }

    public static byte[] Splice(byte[] source, int at, int removeCount, ReadOnlySpan<byte> insert)
    {
        var b = new byte[source.Length - removeCount + insert.Length];
        source.AsSpan(0, at).CopyTo(b);
        insert.CopyTo(b.AsSpan(at));
        source.AsSpan(at + removeCount).CopyTo(b.AsSpan(at + insert.Length));
        return b;
    }
}
