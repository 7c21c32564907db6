namespace Gemma.Cli.Serve;

/// <summary>Settings of <c>gemma serve</c> (see docs/server.md).</summary>
internal sealed record ServerOptions
{
    /// <summary>Address to bind; loopback unless the operator asks otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every API request needs <c>Authorization: Bearer KEY</c> (<c>/health</c> and <c>/</c> stay open).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Slots: sequences decoded together in one batched forward pass.</summary>
    public int Parallel { get; init; } = 4;

    /// <summary>Requests that may wait for a slot; one more is refused with 429.</summary>
    public int QueueLength { get; init; } = 64;

    /// <summary>KV caches kept beyond the slots, so that more conversations keep their prefixes.</summary>
    public int ExtraCaches { get; init; } = 4;

    /// <summary>Positions per sequence (default: the model's option, else min(max_position_embeddings, 8192)).</summary>
    public int? ContextLength { get; init; }

    /// <summary>Prompt tokens prefilled per step (interleaved with the decode rows of the running streams).</summary>
    public int PrefillChunk { get; init; } = 64;

    /// <summary>
    /// Extra ring-buffer positions of the sliding-window layers: how far a sequence may grow past a prefix while that
    /// prefix stays reusable (see <see cref="PrefixCache"/>).
    /// </summary>
    public int ReuseSlack { get; init; } = 512;

    /// <summary>Worker threads of the forward pass (default: the model's option).</summary>
    public int? Threads { get; init; }

    /// <summary>Largest request body accepted (413 beyond).</summary>
    public long MaxBodyBytes { get; init; } = 4 << 20;

    /// <summary>Longest a request may run, queue included.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Origins (<c>https://app.example</c>) whose pages may call the API from a browser, or <c>*</c> for any; none by
    /// default (no CORS headers: a loopback server stays out of reach of the web pages its user visits).
    /// </summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];

    /// <summary>Name reported as the model id (default: the model folder or file name).</summary>
    public string? ModelName { get; init; }
}
