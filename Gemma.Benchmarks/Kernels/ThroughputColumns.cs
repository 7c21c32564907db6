using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Gemma.Benchmarks.Kernels;

/// <summary>
/// Derived columns for matmul benchmarks: weight bytes read per second (GB/s, what bounds decode) and
/// 2·rows·cols·n floating-point operations per second (GFLOP/s, what bounds prefill). They read the
/// benchmark's <c>Shape</c> ("rows×cols"), <c>N</c> and <c>Type</c> parameters and the mean time.
/// </summary>
internal sealed class ThroughputColumn(bool bandwidth) : IColumn
{
    public static readonly IColumn GBps = new ThroughputColumn(true);
    public static readonly IColumn GFlops = new ThroughputColumn(false);

    public string Id => bandwidth ? "GBps" : "GFlops";
    public string ColumnName => bandwidth ? "GB/s" : "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => bandwidth ? 0 : 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => bandwidth ? "Weight bytes / mean time (1e9 B/s)" : "2·rows·cols·n / mean time (1e9 flop/s)";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        double seconds = stats.Mean * 1e-9;
        var p = benchmarkCase.Parameters;
        string[] shape = ((string)p["Shape"]).Split('x');
        long rows = long.Parse(shape[0]), cols = long.Parse(shape[1]), n = Convert.ToInt64(p["N"]);
        var type = (Gemma.Kernels.WeightType)p["Type"];
        double value = bandwidth
            ? Gemma.Kernels.WeightMatrix.RowBytesOf(type, cols) * rows / seconds / 1e9
            : 2.0 * rows * cols * n / seconds / 1e9;
        return value.ToString("F1");
    }
}
