namespace Gemma.Cli.Commands;

/// <summary>Ctrl-C cancels the current generation (not the process) through a token; a second Ctrl-C exits.</summary>
internal sealed class ConsoleCancellation : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly ConsoleCancelEventHandler _handler;

    private ConsoleCancellation(CancellationToken outer)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _handler = (_, e) =>
        {
            if (_source.IsCancellationRequested) return; // second Ctrl-C: let the runtime end the process
            e.Cancel = true;
            _source.Cancel();
        };
        Console.CancelKeyPress += _handler;
    }

    public CancellationToken Token => _source.Token;

    public static ConsoleCancellation Create(CancellationToken outer) => new(outer);

    public void Dispose()
    {
        Console.CancelKeyPress -= _handler;
        _source.Dispose();
    }
}
