using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using Gemma.Core;
using Gemma.Core.Constraints;
using Gemma.Core.Generation;
using Gemma.Core.Model;
using Gemma.Core.Tokenization;

namespace Gemma.Cli.Serve;

/// <summary>Why a request's generation ended, in OpenAI's terms plus the server's own.</summary>
internal enum StopKind { Stop, Length, Cancelled, Timeout, Error }

/// <summary>Final counts of one request.</summary>
internal sealed record GenerationResult(StopKind Stop, int PromptTokens, int CachedTokens, int CompletionTokens, string? Error = null)
{
    /// <summary>From queueing to the first sampled token (null when none was).</summary>
    public TimeSpan? TimeToFirstToken { get; init; }

    /// <summary>From queueing to the end.</summary>
    public TimeSpan Elapsed { get; init; }
}

/// <summary>
/// A prompt waiting for (or in) a slot. The scheduler appends the generated text to a buffer and wakes the reader
/// (<see cref="ReadTextAsync"/>), then completes <see cref="Completion"/> with the result. Handing text over this way
/// allocates nothing on the scheduler thread once the buffer has grown (no string or queue node per token); the
/// reader (the HTTP side) takes the text as one string per wake-up.
/// </summary>
internal sealed class GenerationRequest(int[] prompt, SamplingOptions options, CancellationToken cancellation, TimeSpan timeout)
{
    private readonly Lock _lock = new();
    private readonly StringBuilder _text = new(256);
    private readonly SemaphoreSlim _wake = new(0);
    private int _awake;  // 1 while a wake-up is pending: a burst of tokens releases the semaphore once
    private readonly TaskCompletionSource<GenerationResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int[] Prompt { get; } = prompt;
    public SamplingOptions Options { get; } = options;
    public CancellationToken Cancellation { get; } = cancellation;
    public DateTime Deadline { get; } = DateTime.UtcNow + timeout;
    public long QueuedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>The result, once the generation ended (all its text was appended before).</summary>
    public Task<GenerationResult> Completion => _completion.Task;

    /// <summary>Scheduler side: appends generated text and wakes the reader.</summary>
    internal void Append(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return;
        lock (_lock) _text.Append(text);
        Wake();
    }

    /// <summary>Scheduler side: the end (called once, after the last <see cref="Append"/>).</summary>
    internal void Complete(GenerationResult result)
    {
        _completion.TrySetResult(result);
        Wake();
    }

    private void Wake()
    {
        if (Interlocked.Exchange(ref _awake, 1) == 0) _wake.Release();
    }

    /// <summary>
    /// Reader side: the text in pieces as it is generated (each piece is everything appended since the previous one);
    /// ends with the generation, after which <see cref="Completion"/> holds the result.
    /// </summary>
    public async IAsyncEnumerable<string> ReadTextAsync([EnumeratorCancellation] CancellationToken cancellation)
    {
        while (true)
        {
            await _wake.WaitAsync(cancellation).ConfigureAwait(false);
            Volatile.Write(ref _awake, 0);
            bool done = _completion.Task.IsCompleted;  // read before the text: every append came before completion
            string text;
            lock (_lock)
            {
                text = _text.ToString();
                _text.Clear();
            }
            if (text.Length > 0) yield return text;
            if (done) yield break;
        }
    }
}

/// <summary>
/// Continuous batching over <see cref="ServerOptions.Parallel"/> slots on one dedicated thread. Each step runs ONE
/// batched forward pass (<see cref="Transformer.ForwardBatch"/>) holding a decode row for every generating slot and at
/// most one chunk of prompt rows (of one or several waiting prompts), so a new prompt never stalls the running streams
/// for more than one step.
/// Requests wait in a bounded queue; a cancelled (disconnected) or timed-out request leaves its slot at the next step.
/// A single stream goes through the same batched path (a batch of one), so its output does not depend on the path.
/// </summary>
internal sealed class BatchScheduler : IDisposable
{
    private readonly GemmaModel _model;
    private readonly GemmaTokenizer _tokenizer;
    private readonly ServerOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly Channel<GenerationRequest> _queue;
    private readonly PrefixCache _caches;
    private readonly BatchRows _batch;
    private readonly HashSet<int> _endIds;
    private readonly List<Sequence> _active = [];
    private readonly int _chunk;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    // Per-step row lists, reused.
    private readonly List<int> _tokens = [];
    private readonly List<KvCache> _rowCaches = [];
    private readonly List<int> _logitRows = [];
    private readonly List<Sequence> _logitOwners = [];
    private readonly List<(Sequence Sequence, int Rows)> _prefilling = [];

    public BatchScheduler(GemmaModel model, ServerOptions options, ServerMetrics metrics)
    {
        _model = model;
        _tokenizer = model.RequireTokenizer();
        _options = options;
        _metrics = metrics;
        ContextLength = options.ContextLength ?? model.Options.ContextLength ?? Math.Min(model.Config.MaxPositionEmbeddings, 8192);
        if (ContextLength > model.Config.MaxPositionEmbeddings)
            throw new GemmaException($"Context length {ContextLength} exceeds the model's max_position_embeddings {model.Config.MaxPositionEmbeddings}.");
        _chunk = Math.Min(options.PrefillChunk, ContextLength);
        _queue = Channel.CreateBounded<GenerationRequest>(new BoundedChannelOptions(options.QueueLength) { SingleReader = true });
        _caches = new PrefixCache(model, options.Parallel + options.ExtraCaches, ContextLength, _chunk, options.ReuseSlack);
        _batch = new BatchRows(model.Config, options.Parallel + _chunk, options.Threads ?? model.Options.Threads);
        _endIds = [.. model.Config.EosTokenIds, _tokenizer.EosId];
        if (_tokenizer.EndOfTurnId >= 0) _endIds.Add(_tokenizer.EndOfTurnId);
        _thread = new Thread(Loop) { IsBackground = true, Name = "Gemma scheduler" };
        _thread.Start();
    }

    /// <summary>Positions per sequence.</summary>
    public int ContextLength { get; }

    /// <summary>Requests waiting for a slot.</summary>
    public int QueueLength => _queue.Reader.Count;

    /// <summary>Queues a request; false when the queue is full (the caller answers 429).</summary>
    public bool TryEnqueue(GenerationRequest request) => _queue.Writer.TryWrite(request);

    private void Loop()
    {
        CancellationToken stop = _stop.Token;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    Admit();
                    if (_active.Count == 0)
                    {
                        // Nothing to run: sleep until a request arrives.
                        try { _queue.Reader.WaitToReadAsync(stop).AsTask().GetAwaiter().GetResult(); }
                        catch (OperationCanceledException) { break; }
                        continue;
                    }
                    Step();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A bug, not bad input (requests are validated before they are queued): fail the running requests,
                    // forget their caches, and keep serving the others.
                    FailActive($"Internal error: {e.Message}");
                }
            }
        }
        finally
        {
            foreach (Sequence s in _active) s.Finish(StopKind.Cancelled, _caches, "The server is shutting down.");
            _active.Clear();
            while (_queue.Reader.TryRead(out GenerationRequest? r)) Reject(r, StopKind.Cancelled, "The server is shutting down.");
        }
    }

    /// <summary>Moves queued requests into free slots, each with the idle cache sharing its longest prefix.</summary>
    private void Admit()
    {
        while (_active.Count < _options.Parallel && _queue.Reader.TryRead(out GenerationRequest? request))
        {
            if (request.Cancellation.IsCancellationRequested) { Reject(request, StopKind.Cancelled, null); continue; }
            CacheEntry entry = _caches.Acquire(request.Prompt, out int reused)
                ?? throw new InvalidOperationException("More slots than caches.");  // caches ≥ slots by construction
            _metrics.PromptTokens.Add(request.Prompt.Length);
            _metrics.CachedTokens.Add(reused);
            if (reused > 0) _metrics.CacheHits.Add(1);
            try
            {
                _active.Add(new Sequence(this, request, entry, reused));
            }
            catch (GemmaException e)  // e.g. options the sampler refuses
            {
                _caches.Release(entry);
                Reject(request, StopKind.Error, e.Message);
            }
        }
        _metrics.ActiveSlots = _active.Count;
    }

    private static void Reject(GenerationRequest request, StopKind stop, string? message) =>
        request.Complete(new GenerationResult(stop, request.Prompt.Length, 0, 0, message));

    /// <summary>One forward pass: a decode row per generating sequence, plus at most one chunk of prompt rows.</summary>
    private void Step()
    {
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        int running = _active.Count;
        DateTime now = DateTime.UtcNow;
        for (int i = _active.Count - 1; i >= 0; i--)
        {
            Sequence s = _active[i];
            if (s.Request.Cancellation.IsCancellationRequested) s.Finish(StopKind.Cancelled, _caches, null);
            else if (now > s.Request.Deadline) s.Finish(StopKind.Timeout, _caches, "The request took longer than the server's timeout.");
            else continue;
            _active.RemoveAt(i);
        }
        if (_active.Count == 0) return;

        _tokens.Clear(); _rowCaches.Clear(); _logitRows.Clear(); _logitOwners.Clear();
        foreach (Sequence s in _active)
        {
            if (!s.Decoding) continue;
            _logitRows.Add(_tokens.Count);
            _logitOwners.Add(s);
            _tokens.Add(s.PendingToken);
            _rowCaches.Add(s.Entry.Cache);
        }
        int decodeRows = _tokens.Count;
        // Prompt rows: up to one chunk per pass in all, shared by the waiting prompts oldest first (FIFO fairness), so
        // a burst of short prompts is prefilled in one pass while a long one still takes a chunk per pass.
        _prefilling.Clear();
        int budget = _chunk;
        foreach (Sequence s in _active)
        {
            if (s.Decoding || budget == 0) continue;
            int done = s.Entry.Ids.Count, rows = Math.Min(budget, s.Request.Prompt.Length - done);
            budget -= rows;
            _prefilling.Add((s, rows));
            for (int j = 0; j < rows; j++)
            {
                _tokens.Add(s.Request.Prompt[done + j]);
                _rowCaches.Add(s.Entry.Cache);
            }
            if (done + rows == s.Request.Prompt.Length)
            {
                _logitRows.Add(_tokens.Count - 1);
                _logitOwners.Add(s);
            }
        }

        _metrics.BatchRows = _tokens.Count;
        _metrics.DecodeBatch = decodeRows;
        try
        {
            _model.Transformer.ForwardBatch(CollectionsMarshal.AsSpan(_tokens), CollectionsMarshal.AsSpan(_rowCaches),
                CollectionsMarshal.AsSpan(_logitRows), _batch);
        }
        catch (Exception e) when (e is GemmaException or ArgumentException)
        {
            // Not expected (every request is checked before it is queued); fail the rows of this pass, keep serving.
            FailActive(e.Message);
            return;
        }
        _metrics.Steps.Add(1);

        for (int i = 0; i < decodeRows; i++) _logitOwners[i].Entry.Ids.Add(_logitOwners[i].PendingToken);
        foreach ((Sequence s, int rows) in _prefilling)
            s.Entry.Ids.AddRange(s.Request.Prompt.AsSpan(s.Entry.Ids.Count, rows));

        int vocab = _model.Config.VocabSize;
        for (int j = 0; j < _logitOwners.Count; j++)
        {
            Sequence s = _logitOwners[j];
            ReadOnlySpan<float> logits = _batch.Logits.AsSpan(j * vocab, vocab);
            if (!s.Advance(logits)) continue;
            _active.Remove(s);
        }
        _metrics.ActiveSlots = _active.Count;
        if (_prefilling.Count == 0 && _active.Count == running)
        {
            // A steady decode step: every slot decoded one token, none started or ended. Counted so that a test (and
            // /metrics) can hold the per-token path to zero allocations.
            _metrics.SteadyStepBytes.Add(GC.GetAllocatedBytesForCurrentThread() - allocated);
            _metrics.SteadySteps.Add(1);  // after the bytes: a reader that sees step k also sees its bytes
        }
    }

    private void FailActive(string message)
    {
        foreach (Sequence s in _active)
        {
            s.Entry.Truncate(0);
            s.Finish(StopKind.Error, _caches, message);
        }
        _active.Clear();
        _metrics.ActiveSlots = 0;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _queue.Writer.TryComplete();
        _thread.Join();
        _caches.Dispose();
        _batch.Dispose();
        _stop.Dispose();
    }

    /// <summary>One request in a slot: where its prompt is, its sampler, detokenizer and stop matcher.</summary>
    private sealed class Sequence
    {
        private readonly BatchScheduler _owner;
        private readonly Sampler _sampler;
        private readonly ConstrainedSampler? _constrained;  // response_format: masks tokens that cannot lead to a valid output
        private readonly StreamingDetokenizer _detokenizer;
        private readonly StopSequenceMatcher _stops;
        private readonly List<int> _history;
        private readonly int _reused;
        private int _generated;
        private TimeSpan? _firstToken;

        public Sequence(BatchScheduler owner, GenerationRequest request, CacheEntry entry, int reused)
        {
            _owner = owner;
            Request = request;
            Entry = entry;
            _reused = reused;
            _sampler = new Sampler(request.Options, owner._model.Config.VocabSize);
            if (request.Options.Constraint is OutputConstraint constraint)
                _constrained = new ConstrainedSampler(constraint, owner._tokenizer, owner._endIds, owner._model.Config.VocabSize, request.Options.MaxTokens);
            _detokenizer = new StreamingDetokenizer(owner._tokenizer);
            _stops = new StopSequenceMatcher(request.Options.StopSequences);
            // Sized for the whole generation (bounded by the context), so the history never grows while decoding.
            _history = new List<int>(Math.Min(request.Prompt.Length + request.Options.MaxTokens, owner.ContextLength));
            _history.AddRange(request.Prompt);
        }

        public GenerationRequest Request { get; }
        public CacheEntry Entry { get; }

        /// <summary>The prompt is in the cache; <see cref="PendingToken"/> is next to decode.</summary>
        public bool Decoding { get; private set; }
        public int PendingToken { get; private set; }

        /// <summary>Samples from the logits of the last position; returns true when the sequence is finished.</summary>
        public bool Advance(ReadOnlySpan<float> logits)
        {
            int next;
            try
            {
                next = _constrained is null
                    ? _sampler.Sample(logits, CollectionsMarshal.AsSpan(_history))
                    : _constrained.Sample(_sampler, logits, CollectionsMarshal.AsSpan(_history), Request.Options.MaxTokens - _generated);
            }
            catch (GemmaException e)  // every token banned by logit_bias
            {
                Finish(StopKind.Error, _owner._caches, e.Message);
                return true;
            }
            if (_generated++ == 0) _firstToken = System.Diagnostics.Stopwatch.GetElapsedTime(Request.QueuedAt);
            _owner._metrics.CompletionTokens.Add(1);
            if (_owner._endIds.Contains(next)) return Finish(StopKind.Stop, _owner._caches, null);
            _constrained?.Accept(next);
            _history.Add(next);
            Request.Append(_stops.PushSpan(_detokenizer.Append(next)));
            if (_stops.Stopped) return Finish(StopKind.Stop, _owner._caches, null);
            if (_constrained is { IsFinished: true }) return Finish(StopKind.Stop, _owner._caches, null);  // nothing may follow
            if (_generated >= Request.Options.MaxTokens) return Finish(StopKind.Length, _owner._caches, null);
            if (Entry.Cache.Length >= Entry.Cache.ContextLength) return Finish(StopKind.Length, _owner._caches, null);
            Decoding = true;
            PendingToken = next;
            return false;
        }

        /// <summary>Flushes held-back text, reports the result, and returns the cache (its ids stay as a prefix).</summary>
        public bool Finish(StopKind stop, PrefixCache caches, string? error)
        {
            if (stop is StopKind.Stop or StopKind.Length && !_stops.Stopped)
            {
                Request.Append(_stops.PushSpan(_detokenizer.Flush()));
                Request.Append(_stops.FlushSpan());
            }
            caches.Release(Entry);
            var result = new GenerationResult(stop, Request.Prompt.Length, _reused, _generated, error)
            {
                TimeToFirstToken = _firstToken, Elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(Request.QueuedAt),
            };
            Request.Complete(result);
            return true;
        }
    }
}
