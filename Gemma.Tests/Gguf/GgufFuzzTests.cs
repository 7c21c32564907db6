using Gemma.Kernels;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Gemma.Core;
using Gemma.Core.Formats.Gguf;
using NUnit.Framework;

namespace Gemma.Tests.Gguf;

/// <summary>
/// Thousands of corruptions of a small valid file. Each must end in a <see cref="GemmaException"/> or in a load
/// whose tensors all lie inside the file — never another exception, never a giant allocation. The case list is
/// fixed (deterministic corruptions of a seed of known size), so the work is bounded by construction; per-case
/// time is reported, never asserted (a hang shows as the CI job's timeout, not as a flaky stopwatch).
/// </summary>
[Category("Gguf")]
public class GgufFuzzTests
{
    private const int FileEvery = 10;

    private sealed class Stats
    {
        public int Cases, FileCases, Accepted, Rejected;
        public long MaxAllocated;
        public double MaxCaseMs;
        public readonly List<string> Failures = [];
        public readonly Dictionary<string, int> PerKind = [];
    }

    [Test]
    public void CorruptedFilesFailCleanly()
    {
        string dir = GgufTestFiles.NewTempDirectory();
        try
        {
            byte[] seed = GgufTestFiles.SmallModelBytes(dir);
            string alignedPath = Path.Combine(dir, "aligned.gguf");
            var aligned = new GgufWriter(64);
            aligned.AddMetadata("general.name", GgufValue.FromString("x"));
            aligned.AddTensor("t", GgmlType.F32, [16], new byte[64]);
            aligned.Write(alignedPath);
            byte[] alignedSeed = File.ReadAllBytes(alignedPath);
            long headerEnd;
            using (GgufFile f = GgufFile.Open(Path.Combine(dir, "seed.gguf"))) headerEnd = f.DataOffset;

            var stats = new Stats();
            string casePath = Path.Combine(dir, "case.gguf");
            var total = Stopwatch.StartNew();
            foreach ((string kind, byte[] bytes) in Cases(seed, (int)headerEnd).Concat(AlignmentCases(alignedSeed)))
                RunCase(kind, bytes, casePath, stats);
            TestContext.Out.WriteLine(
                $"GGUF fuzz: {stats.Cases} cases ({string.Join(", ", stats.PerKind.Select(k => $"{k.Key} {k.Value}"))}) " +
                $"from a {seed.Length}-byte seed (header {headerEnd} bytes), {stats.FileCases} of them also as mapped files: " +
                $"{stats.Rejected} outcomes rejected with GemmaException, {stats.Accepted} loaded; max {stats.MaxAllocated} bytes allocated and {stats.MaxCaseMs:F1} ms per case; " +
                $"{total.Elapsed.TotalSeconds:F1} s total; {stats.Failures.Count} failures");
            Assert.That(stats.Failures, Is.Empty, string.Join("\n", stats.Failures.Take(20)));
            Assert.That(stats.Cases, Is.GreaterThan(5000));
            Assert.That(stats.Rejected, Is.GreaterThan(1000), "the corruptions must actually reach the validation");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Runs one case through the in-memory entry (same parser and validation, no file I/O) and, for every
    /// <see cref="FileEvery"/>-th case, also through a real file and memory mapping — the two must agree.
    /// </summary>
    /// <summary>
    /// A file packed with the smallest possible items (20,000 one-byte metadata values, 5,000 tiny tensors) must
    /// cost memory in proportion to its size: error-message strings are only built on failure.
    /// </summary>
    [Test]
    public void ManySmallItemsAllocateInProportionToTheFile()
    {
        const int kvs = 20_000, tensors = 5_000;
        var raw = RawGguf.Header(tensors, kvs);
        for (int i = 0; i < kvs; i++) raw.Str($"k{i}").U32((uint)GgufValueType.UInt8).U8((byte)i);
        for (int i = 0; i < tensors; i++) raw.Tensor($"t{i}", (uint)GgmlType.F32, 32ul * (ulong)i, 8);
        byte[] bytes = raw.Data(32 * tensors).ToArray();

        GgufFile.FromMemory(bytes, "warmup.gguf").Dispose();
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (GgufFile f = GgufFile.FromMemory(bytes, "many.gguf"))
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            TestContext.Out.WriteLine($"{bytes.Length} bytes, {kvs} pairs, {tensors} tensors: {allocated} bytes allocated ({(double)allocated / bytes.Length:F1}× the file)");
            Assert.That(f.Metadata.Count, Is.EqualTo(kvs));
            Assert.That(f.Tensors, Has.Count.EqualTo(tensors));
            Assert.That(allocated, Is.LessThan(16L * bytes.Length));
        }
    }

    private static void RunCase(string kind, byte[] bytes, string path, Stats stats)
    {
        stats.Cases++;
        stats.PerKind[kind] = stats.PerKind.GetValueOrDefault(kind) + 1;
        string label = $"{kind} case {stats.Cases}";
        long budget = 64L * bytes.Length + (1 << 20);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        string outcome = Outcome(() => GgufFile.FromMemory(bytes, "case.gguf"), bytes.Length, label, stats);
        sw.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        stats.MaxAllocated = Math.Max(stats.MaxAllocated, allocated);
        stats.MaxCaseMs = Math.Max(stats.MaxCaseMs, sw.Elapsed.TotalMilliseconds);
        if (allocated > budget) stats.Failures.Add($"{label}: allocated {allocated} bytes (budget {budget})");

        if (stats.Cases % FileEvery != 0 && kind != "truncate") return;
        File.WriteAllBytes(path, bytes);
        stats.FileCases++;
        string mapped = Outcome(() => GgufFile.Open(path), bytes.Length, label + " (mapped)", stats);
        if (mapped != outcome) stats.Failures.Add($"{label}: memory says '{outcome}', the mapped file says '{mapped}'");
    }

    /// <summary>"loaded" or the GemmaException message; any other exception is recorded as a failure.</summary>
    private static string Outcome(Func<GgufFile> open, long length, string label, Stats stats)
    {
        try
        {
            using GgufFile f = open();
            string? problem = Verify(f, length);
            if (problem is not null) stats.Failures.Add($"{label}: loaded but {problem}");
            stats.Accepted++;
            return "loaded";
        }
        catch (GemmaException e)
        {
            stats.Rejected++;
            if (!e.Message.StartsWith("case.gguf: ", StringComparison.Ordinal))
                stats.Failures.Add($"{label}: message does not name the file: {e.Message}");
            return e.Message;
        }
        catch (Exception e)
        {
            stats.Failures.Add($"{label}: {e.GetType().Name}: {e.Message}");
            return e.GetType().Name;
        }
    }

    /// <summary>
    /// What a successful load must satisfy: tensors inside the data section, not overlapping, uniquely named;
    /// touches every tensor's first and last byte and every metadata value.
    /// </summary>
    private static string? Verify(GgufFile f, long length)
    {
        if (f.FileLength != length) return $"FileLength {f.FileLength} != {length}";
        foreach (GgufTensorInfo t in f.Tensors)
        {
            if (t.FileOffset < f.DataOffset || t.ByteSize <= 0 || t.FileOffset + t.ByteSize > length)
                return $"tensor '{t.Name}' [{t.FileOffset}, +{t.ByteSize}) is outside the data section";
            _ = t.GetData(0, 1)[0] + t.GetData(t.ByteSize - 1, 1)[0];
        }
        GgufTensorInfo[] byOffset = f.Tensors.OrderBy(t => t.FileOffset).ToArray();
        for (int i = 1; i < byOffset.Length; i++)
            if (byOffset[i - 1].FileOffset + byOffset[i - 1].ByteSize > byOffset[i].FileOffset)
                return $"tensors '{byOffset[i - 1].Name}' and '{byOffset[i].Name}' overlap";
        if (f.Tensors.Select(t => t.Name).Distinct().Count() != f.Tensors.Count) return "duplicate tensor names";
        foreach (KeyValuePair<string, GgufValue> kv in f.Metadata) _ = kv.Value.ToString() + kv.Value.Value;
        return null;
    }

    private static IEnumerable<(string Kind, byte[] Bytes)> Cases(byte[] seed, int headerEnd)
    {
        var rng = new Random(20261127);

        // Truncation at every byte of the header region, and every 5th byte of the data.
        for (int n = 0; n < seed.Length; n += n < headerEnd + 8 ? 1 : 5) yield return ("truncate", seed[..n]);

        // Random single-byte and multi-byte corruption of the header region.
        for (int i = 0; i < 4000; i++)
        {
            byte[] b = (byte[])seed.Clone();
            b[rng.Next(headerEnd)] = (byte)rng.Next(256);
            yield return ("flip1", b);
        }
        for (int i = 0; i < 3000; i++)
        {
            byte[] b = (byte[])seed.Clone();
            for (int k = rng.Next(2, 9); k > 0; k--) b[rng.Next(headerEnd)] ^= (byte)(1 << rng.Next(8));
            yield return ("flipN", b);
        }

        // Huge or hostile 64-bit values (counts, lengths, dims, offsets) and 32-bit values (types, n_dims)
        // written at every offset of the header: wherever a field starts, it gets each of them.
        ulong[] values64 = [ulong.MaxValue, long.MaxValue, 1ul << 63, (ulong)seed.Length, (ulong)seed.Length + 1, int.MaxValue, 1ul << 32, 0];
        uint[] values32 = [uint.MaxValue, 0x80000000, 0, 4, 5, 13, 31, 40, 0x03000000];
        for (int at = 0; at + 8 <= headerEnd; at++)
        {
            foreach (ulong v in values64)
            {
                byte[] b = (byte[])seed.Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
                yield return ("u64", b);
            }
            foreach (uint v in values32)
            {
                byte[] b = (byte[])seed.Clone();
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
                yield return ("u32", b);
            }
        }

        // Dimensions whose product overflows: 2 or all 4 dims of the 4-D tensor set to a big value.
        int dimsAt = IndexOf(seed, "test.conv4d") + "test.conv4d".Length + 4; // after name and n_dims
        foreach (ulong big in new ulong[] { 1 << 16, 1 << 20, int.MaxValue, 1ul << 31, 1ul << 62 })
        {
            foreach (int count in new[] { 2, 4 })
            {
                byte[] b = (byte[])seed.Clone();
                for (int d = 0; d < count; d++) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(dimsAt + 8 * d), big);
                yield return ("dims", b);
            }
        }
    }

    /// <summary>general.alignment (a uint32 in a file written with alignment 64) replaced by bad and good values.</summary>
    private static IEnumerable<(string Kind, byte[] Bytes)> AlignmentCases(byte[] seed)
    {
        int typeAt = IndexOf(seed, "general.alignment") + "general.alignment".Length;
        foreach (uint v in new uint[] { 0, 1, 3, 8, 16, 48, 64, 128, 4096, 1u << 31, uint.MaxValue })
        {
            byte[] b = (byte[])seed.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(typeAt + 4), v);
            yield return ("alignment", b);
        }
        foreach (uint type in new uint[] { 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 255 })
        {
            byte[] b = (byte[])seed.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(typeAt), type);
            yield return ("alignment", b);
        }
    }

    private static int IndexOf(byte[] haystack, string ascii)
    {
        int i = haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(ascii));
        if (i < 0) throw new InvalidOperationException($"'{ascii}' not found in the seed");
        return i;
    }
}
