using System.Globalization;

namespace Gemma.Benchmarks.Peer;

/// <summary><c>--name value</c> and <c>--flag</c> arguments of the non-BenchmarkDotNet modes.</summary>
internal sealed class PeerArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public PeerArgs(IEnumerable<string> args)
    {
        string[] a = args.ToArray();
        for (int i = 0; i < a.Length; i++)
        {
            if (!a[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{a[i]}'");
            string key = a[i][2..];
            bool hasValue = i + 1 < a.Length && !a[i + 1].StartsWith("--", StringComparison.Ordinal);
            _values[key] = hasValue ? a[++i] : null;
        }
    }

    public bool Flag(string name) => _values.ContainsKey(name);

    public string? String(string name) => _values.TryGetValue(name, out string? v) ? v : null;

    public string Require(string name) => String(name) ?? throw new ArgumentException($"--{name} is required");

    public int Int(string name, int fallback)
    {
        string? v = String(name);
        if (v == null) return fallback;
        int n = int.Parse(v, CultureInfo.InvariantCulture);
        if (n < 1) throw new ArgumentException($"--{name} must be at least 1, got {n}");
        return n;
    }
}

/// <summary>Small numeric and process helpers shared by the peer modes.</summary>
internal static class PeerStats
{
    public static double Mean(IReadOnlyList<double> x) => x.Count == 0 ? double.NaN : x.Average();

    /// <summary>Sample standard deviation (n − 1), 0 for fewer than two values.</summary>
    public static double Sd(IReadOnlyList<double> x)
    {
        if (x.Count < 2) return 0;
        double m = x.Average();
        return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Count - 1));
    }

    /// <summary>A line of /proc/self/status in MiB (VmHWM = peak resident set, VmRSS = current); NaN off Linux.</summary>
    public static double StatusMiB(string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(field.Length + 1).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return double.NaN;
    }

    /// <summary>The 1-minute load average (/proc/loadavg), NaN where unavailable.</summary>
    public static double LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (IOException) { return double.NaN; }
    }

    /// <summary>log Σ exp(x), computed in double.</summary>
    public static double LogSumExp(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (float v in x) if (v > max) max = v;
        double sum = 0;
        foreach (float v in x) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    /// <summary>KL(softmax(p) ‖ softmax(q)) in nats.</summary>
    public static double KlDivergence(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        double lp = LogSumExp(p), lq = LogSumExp(q), kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double logP = p[i] - lp;
            kl += Math.Exp(logP) * (logP - (q[i] - lq));
        }
        return Math.Max(kl, 0);
    }

    /// <summary>Repository root: the first folder above the executable (or the working directory) holding gemma.sln.</summary>
    public static string RepoRoot()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "gemma.sln"))) return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (gemma.sln).");
    }
}
