namespace Gemma.Cli;

/// <summary>
/// A one-line progress bar on stderr (only when stderr is a terminal; otherwise silent). Reports arrive on the
/// working thread (unlike <see cref="Progress{T}"/>, which posts them to the thread pool and lags behind).
/// </summary>
internal sealed class ProgressBar(string label) : IDisposable, IProgress<(long Done, long Total)>
{
    void IProgress<(long Done, long Total)>.Report((long Done, long Total) value) => Report(value.Done, value.Total);

    private readonly bool _enabled = !Console.IsErrorRedirected;
    private int _lastPermille = -1;
    private bool _done;

    public void Report(long done, long total)
    {
        if (!_enabled || total <= 0) return;
        int permille = (int)(done * 1000 / total);
        if (permille == _lastPermille) return;
        _lastPermille = permille;
        int width = 40, filled = permille * width / 1000;
        Console.Error.Write($"\r{label} [{new string('#', filled)}{new string('.', width - filled)}] {permille / 10.0,5:F1}%  {done / 1048576.0:F0}/{total / 1048576.0:F0} MiB");
    }

    public void Dispose()
    {
        if (_enabled && !_done && _lastPermille >= 0) Console.Error.WriteLine();
        _done = true;
    }
}
