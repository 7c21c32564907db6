using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Gemma.Core.Tokenization;

namespace Gemma.Benchmarks;

/// <summary>
/// Tokenizer speed on the real 256k Gemma 2 vocabulary: encoding Japanese text (MB/s column: UTF-8 megabytes of
/// input per second), streaming detokenization (ns per token in the Mean column divided by the token count shown),
/// and loading tokenizer.json.
/// <c>dotnet run -c Release --project Gemma.Benchmarks -- --filter '*TokenizerBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class TokenizerBenchmarks
{
    private const string Sentence =
        "日本の首都は東京です。今日はいい天気ですね。散歩に行きましょうか？カタカナとひらがなと漢字が混ざった文章、" +
        "ｱｲｳｴｵ ﾊﾝｶｸ、全角ＡＢＣ１２３、絵文字😀🍣、吉野家と𠮷野家。Debian システムでパッケージをインストールするには、";

    private GemmaTokenizer _tokenizer = null!;
    private string _text64K = "";
    private string _text1M = "";
    private int[] _ids = [];
    private StreamingDetokenizer _detokenizer = null!;

    /// <summary>Input bytes per benchmark, read by the MB/s column.</summary>
    internal static readonly Dictionary<string, double> InputBytes = new();

    public static string TokenizerPath
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "gemma.sln")))
                    return Path.Combine(dir.FullName, "Gemma.Tests", "Fixtures", "gemma2-tokenizer.json.gz");
            }
            throw new InvalidOperationException("Run the benchmarks from inside the repository (no gemma.sln found above).");
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _tokenizer = GemmaTokenizer.FromTokenizerJson(TokenizerPath);
        _text64K = Repeat(64 * 1024);
        _text1M = Repeat(1024 * 1024);
        _ids = _tokenizer.EncodeToIds(_text64K, addBos: true);
        _detokenizer = new StreamingDetokenizer(_tokenizer);
        Console.WriteLine($"// 64 KB text: {_ids.Length} tokens");
    }

    private static string Repeat(int utf8Bytes)
    {
        var text = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(text.ToString()) < utf8Bytes) text.Append(Sentence);
        return text.ToString();
    }

    static TokenizerBenchmarks()
    {
        int Bytes(int target) { var t = new StringBuilder(); while (Encoding.UTF8.GetByteCount(t.ToString()) < target) t.Append(Sentence); return Encoding.UTF8.GetByteCount(t.ToString()); }
        InputBytes[nameof(EncodeJapanese64K)] = Bytes(64 * 1024);
        InputBytes[nameof(EncodeJapanese1MNoNewline)] = Bytes(1024 * 1024);
        InputBytes[nameof(DecodeAll64K)] = Bytes(64 * 1024);
        InputBytes[nameof(StreamingDecode64K)] = Bytes(64 * 1024);
    }

    [Benchmark]
    public int EncodeJapanese64K() => _tokenizer.EncodeToIds(_text64K, addBos: true).Length;

    [Benchmark]
    public int EncodeJapanese1MNoNewline() => _tokenizer.EncodeToIds(_text1M, addBos: true).Length;

    [Benchmark]
    public int DecodeAll64K() => _tokenizer.Decode(_ids).Length;

    /// <summary>Feeds every id of the 64 KB text through the streaming detokenizer, one at a time.</summary>
    [Benchmark]
    public int StreamingDecode64K()
    {
        int chars = 0;
        foreach (int id in _ids) chars += _detokenizer.Append(id).Length;
        return chars + _detokenizer.Flush().Length;
    }

    [Benchmark]
    public int LoadTokenizerJson() => GemmaTokenizer.FromTokenizerJson(TokenizerPath).VocabularySize;

    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig() => AddColumn(new MegabytesPerSecondColumn());
    }

    /// <summary>UTF-8 input (or decoded output) megabytes per second, from the mean time.</summary>
    private sealed class MegabytesPerSecondColumn : IColumn
    {
        public string Id => "MBps";
        public string ColumnName => "MB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Megabytes (10^6) of UTF-8 text per second, from the mean";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is not { } stats || !InputBytes.TryGetValue(benchmarkCase.Descriptor.WorkloadMethod.Name, out double bytes))
                return "-";
            return (bytes / (stats.Mean * 1e-9) / 1e6).ToString("F1");
        }
    }
}
