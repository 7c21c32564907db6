using System.Globalization;
using System.Text;

namespace Gemma.Cli.Serve;

/// <summary>Counters and gauges of the server, rendered in the Prometheus text format at <c>/metrics</c>.</summary>
internal sealed class ServerMetrics
{
    /// <summary>A thread-safe monotonically increasing count.</summary>
    internal sealed class Counter
    {
        private long _value;
        public void Add(long n) => Interlocked.Add(ref _value, n);
        public long Value => Interlocked.Read(ref _value);
    }

    public Counter Requests { get; } = new();
    public Counter RequestErrors { get; } = new();
    public Counter Rejected { get; } = new();
    public Counter PromptTokens { get; } = new();
    public Counter CachedTokens { get; } = new();
    public Counter CompletionTokens { get; } = new();
    public Counter CacheHits { get; } = new();
    public Counter Steps { get; } = new();
    /// <summary>Decode steps in which every slot decoded one token and none started or ended.</summary>
    public Counter SteadySteps { get; } = new();
    /// <summary>Bytes the scheduler thread allocated in those steps (0 is the goal: nothing per generated token).</summary>
    public Counter SteadyStepBytes { get; } = new();
    public volatile int ActiveSlots;
    public volatile int BatchRows;
    public volatile int DecodeBatch;

    public string Render(int queueLength, int slots)
    {
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, double value)
        {
            sb.Append("# HELP gemma_").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE gemma_").Append(name).Append(' ').Append(type).Append('\n');
            sb.Append("gemma_").Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        Metric("requests_total", "counter", "HTTP API requests received.", Requests.Value);
        Metric("request_errors_total", "counter", "Requests answered with an error status.", RequestErrors.Value);
        Metric("requests_rejected_total", "counter", "Requests refused because the queue was full (429).", Rejected.Value);
        Metric("prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", PromptTokens.Value);
        Metric("prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.", CachedTokens.Value);
        Metric("completion_tokens_total", "counter", "Tokens generated.", CompletionTokens.Value);
        Metric("prefix_cache_hits_total", "counter", "Requests that reused a cached prefix.", CacheHits.Value);
        Metric("forward_steps_total", "counter", "Batched forward passes run.", Steps.Value);
        Metric("decode_steady_steps_total", "counter", "Decode steps in which every slot decoded one token and none started or ended.", SteadySteps.Value);
        Metric("decode_steady_allocated_bytes_total", "counter", "Bytes the scheduler thread allocated in those steps (expected 0).", SteadyStepBytes.Value);
        Metric("queue_length", "gauge", "Requests waiting for a slot.", queueLength);
        Metric("slots", "gauge", "Slots (--parallel).", slots);
        Metric("slots_active", "gauge", "Slots holding a request.", ActiveSlots);
        Metric("batch_rows", "gauge", "Rows of the last forward pass (decode rows + prefill chunk).", BatchRows);
        Metric("batch_decode_rows", "gauge", "Decode rows of the last forward pass.", DecodeBatch);
        return sb.ToString();
    }
}
