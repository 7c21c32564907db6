using Gemma.Kernels;
using System.Security.Cryptography;
using Gemma.Core;
using Gemma.Core.Formats;
using Gemma.Core.Formats.Safetensors;
using Gemma.Core.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Nothing lost: model files are opened read-only and never written (checked on the open descriptors and mappings,
/// because the tests may run as root, for whom mode 0444 stops nothing), and <see cref="SafetensorsWriter"/> makes
/// its file appear only when complete.
/// </summary>
[Category("Reliability")]
public class NothingLostTests
{
    private static Dictionary<string, (string Hash, DateTime Modified)> Snapshot(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => f, f => (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))), File.GetLastWriteTimeUtc(f)));

    [Test]
    public void ModelFilesAreOpenedReadOnlyAndNeverWritten()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("reads /proc/self");
            return;
        }
        using var dir = new Fixtures.TempDir();
        foreach (string f in Directory.GetFiles(Fixtures.DemoModel).Where(f => !f.EndsWith(".f32", StringComparison.Ordinal)))
        {
            string copy = Path.Combine(dir.Path, Path.GetFileName(f));
            File.Copy(f, copy);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead); // 0444
        }
        var before = Snapshot(dir.Path);

        using (var model = GemmaModel.Load(dir.Path, new GemmaModelOptions { Threads = 1, ContextLength = 256 }))
        {
            // While loaded: every descriptor on a model file is O_RDONLY and every mapping of one is not writable.
            var descriptors = new DirectoryInfo("/proc/self/fd").GetFiles()
                .Select(fd => (Fd: fd.Name, Target: fd.LinkTarget))
                .Where(x => x.Target != null && x.Target.StartsWith(dir.Path, StringComparison.Ordinal)).ToList();
            Assert.That(descriptors.Select(d => Path.GetFileName(d.Target)), Is.SupersetOf(new[] { "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors" }));
            foreach ((string fd, string? target) in descriptors)
            {
                string flags = File.ReadLines($"/proc/self/fdinfo/{fd}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
                int accessMode = Convert.ToInt32(flags.Split(':')[1].Trim(), 8) & 3; // O_RDONLY 0, O_WRONLY 1, O_RDWR 2
                Assert.That(accessMode, Is.Zero, $"{target} is open with {flags}");
            }
            string[] maps = File.ReadAllLines("/proc/self/maps").Where(l => l.Contains(dir.Path, StringComparison.Ordinal)).ToArray();
            Assert.That(maps, Is.Not.Empty, "the shards are memory-mapped");
            foreach (string map in maps) Assert.That(map.Split(' ')[1], Does.Not.Contain("w"), map);

            using var generator = new TextGenerator(model);
            int[] prompt = model.RequireTokenizer().EncodeToIds("パッケージを", addBos: true);
            Assert.That(string.Concat(generator.Generate(prompt, SamplingOptions.Greedy with { MaxTokens = 24 })), Is.Not.Empty);
            using var chat = model.CreateChatSession();
            _ = chat.SendAsync("こんにちは", new SamplingOptions { Seed = 3, MaxTokens = 8 }).ToBlockingEnumerable().ToList();
        }

        var after = Snapshot(dir.Path);
        Assert.That(after.Keys, Is.EquivalentTo(before.Keys), "no file added or removed");
        foreach (var (file, state) in before) Assert.That(after[file], Is.EqualTo(state), $"{file} changed");
    }

    private static SafetensorsTensor Tensor(string name, int elements, Action<Stream>? write = null) =>
        new(name, GgmlType.F32, [elements], write ?? (s => s.Write(new byte[elements * 4])));

    [TestCase(false)]
    [TestCase(true)]
    public void WriterThatFailsMidwayLeavesTheTargetAsItWas(bool targetExists)
    {
        using var dir = new Fixtures.TempDir();
        string target = Path.Combine(dir.Path, "model.safetensors");
        byte[] previous = [1, 2, 3, 4, 5];
        if (targetExists) File.WriteAllBytes(target, previous);
        var tensors = new[]
        {
            Tensor("a", 1000),
            Tensor("b", 1000, s => { s.Write(new byte[1500]); throw new IOException("disk full (simulated)"); }),
            Tensor("c", 10),
        };
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(target, tensors));
        AssertUntouched(dir.Path, target, targetExists ? previous : null);

        // A callback that writes the wrong number of bytes is caught before the rename too.
        var wrongSize = new[] { Tensor("a", 1000), Tensor("b", 1000, s => s.Write(new byte[3999])) };
        Assert.That(Assert.Throws<GemmaException>(() => SafetensorsWriter.Write(target, wrongSize))!.Message, Does.Contain("'b'"));
        AssertUntouched(dir.Path, target, targetExists ? previous : null);

        // And a complete write replaces the target with a file that opens.
        SafetensorsWriter.Write(target, [Tensor("a", 1000), Tensor("b", 16)]);
        Assert.That(Directory.GetFiles(dir.Path), Is.EquivalentTo(new[] { target }));
        using var file = SafetensorsFile.Open(target);
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(new[] { "a", "b" }));
    }

    private static void AssertUntouched(string dir, string target, byte[]? previous)
    {
        if (previous == null) Assert.That(File.Exists(target), Is.False, "no partial target");
        else Assert.That(File.ReadAllBytes(target), Is.EqualTo(previous), "the old target is intact");
        Assert.That(Directory.GetFiles(dir), Is.EquivalentTo(previous == null ? Array.Empty<string>() : new[] { target }), "no temporary file left behind");
    }
}
