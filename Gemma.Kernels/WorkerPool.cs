namespace Gemma.Kernels;

/// <summary>
/// A persistent set of worker threads that kernels split their output rows over.
/// (Placeholder: runs work on the calling thread until the threading work lands.)
/// </summary>
public sealed class WorkerPool : IDisposable
{
    /// <summary>Creates a pool of <paramref name="threads"/> workers including the calling thread.</summary>
    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
    }

    /// <summary>Degree of parallelism, counting the calling thread.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public void Dispose() { }
}
