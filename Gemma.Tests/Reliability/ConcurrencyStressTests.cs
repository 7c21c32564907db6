using System.Collections.Concurrent;
using System.Text;
using Gemma.Core;
using Gemma.Core.Generation;
using Gemma.Tests.Generation;
using NUnit.Framework;

namespace Gemma.Tests.Reliability;

/// <summary>
/// Many sessions on one shared model from many threads, with cancellations at seeded random points. Every run has a
/// sequential twin (same prompt, options and seed, run alone first): an uncancelled run must produce exactly the
/// twin's text, a cancelled one a prefix of it; the only exception allowed is <see cref="OperationCanceledException"/>;
/// and the managed heap after a full collection must be back where it was after a warm-up round.
/// </summary>
[Category("Reliability")]
public class ConcurrencyStressTests
{
    private const int Workers = 8, Rounds = 4, MaxTokens = 32;
    private static GemmaModel Model => DemoModel.Instance;

    private static readonly string[] Prompts =
    [
        "Debian システムでパッケージをインストールするには", "このコマンドは", "設定ファイルを編集して", "カーネルのビルドには",
        "ネットワークの設定は", "apt-get を使うと", "ユーザーを追加するには", "ログファイルは",
    ];

    private enum Kind { Generator, Chat, Complete }

    private sealed record Job(int Worker, int Round, Kind Kind, string Prompt, SamplingOptions Options, int CancelAfterPieces);

    private static List<Job> Jobs(int seed)
    {
        var rng = new Random(seed);
        var jobs = new List<Job>();
        for (int w = 0; w < Workers; w++)
            for (int r = 0; r < Rounds; r++)
            {
                // Half the runs are not cancelled; the others at a random piece (0 = before the first token).
                int cancel = rng.Next(2) == 0 ? -1 : rng.Next(0, MaxTokens);
                var options = new SamplingOptions { Seed = rng.Next(), MaxTokens = MaxTokens, Temperature = rng.Next(4) == 0 ? 0f : 0.9f };
                jobs.Add(new Job(w, r, (Kind)((w + r) % 3), Prompts[rng.Next(Prompts.Length)], options, cancel));
            }
        return jobs;
    }

    /// <summary>Runs one job; returns its text and whether it was cancelled.</summary>
    private static async Task<(string Text, bool Cancelled)> RunAsync(Job job, bool allowCancel)
    {
        using var cts = new CancellationTokenSource();
        var text = new StringBuilder();
        int pieces = 0;
        void Seen()
        {
            if (allowCancel && ++pieces >= job.CancelAfterPieces && job.CancelAfterPieces >= 0) cts.Cancel();
        }
        if (allowCancel && job.CancelAfterPieces == 0) cts.Cancel();
        try
        {
            switch (job.Kind)
            {
                case Kind.Generator:
                    using (var generator = new TextGenerator(Model))
                    {
                        int[] ids = Model.RequireTokenizer().EncodeToIds(job.Prompt, addBos: true);
                        await foreach (string s in generator.GenerateAsync(ids, job.Options, cts.Token)) { text.Append(s); Seen(); }
                    }
                    break;
                case Kind.Chat:
                    using (ChatSession chat = Model.CreateChatSession())
                        await foreach (string s in chat.SendAsync(job.Prompt, job.Options, cts.Token)) { text.Append(s); Seen(); }
                    break;
                default:
                    await foreach (string s in Model.CompleteAsync(job.Prompt, job.Options, cts.Token)) { text.Append(s); Seen(); }
                    break;
            }
            return (text.ToString(), false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return (text.ToString(), true);
        }
    }

    private static async Task<long> StressRound(List<Job> jobs, Dictionary<Job, string> twins, ConcurrentBag<string> problems)
    {
        int cancelled = 0;
        var tasks = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            foreach (Job job in jobs.Where(j => j.Worker == w))
            {
                try
                {
                    (string text, bool wasCancelled) = await RunAsync(job, allowCancel: true);
                    string twin = twins[job];
                    if (wasCancelled) Interlocked.Increment(ref cancelled);
                    if (wasCancelled ? !twin.StartsWith(text, StringComparison.Ordinal) : text != twin)
                        problems.Add($"worker {w} round {job.Round} ({job.Kind}, cancel after {job.CancelAfterPieces}): '{text}' vs twin '{twin}'");
                }
                catch (Exception e)
                {
                    problems.Add($"worker {w} round {job.Round} ({job.Kind}): {e.GetType().Name}: {e.Message}");
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        return cancelled;
    }

    [Test]
    public async Task EightSessionsOnOneModelWithRandomCancellations()
    {
        List<Job> jobs = Jobs(seed: 4242);
        var twins = new Dictionary<Job, string>();
        foreach (Job job in jobs) twins[job] = (await RunAsync(job, allowCancel: false)).Text;
        Assert.That(twins.Values.Count(t => t.Length > 0), Is.GreaterThan(jobs.Count / 2), "fixture sanity: the twins produce text");

        var problems = new ConcurrentBag<string>();
        await StressRound(jobs, twins, problems); // warm-up: JIT, thread-static buffers, thread-pool growth
        Assert.That(problems, Is.Empty, string.Join("\n", problems.Take(5)));

        // What one session keeps alive (its activation buffers; the KV cache is native memory): measured, not assumed.
        long beforeOne = SettledHeap();
        long oneSession;
        using (InferenceContext one = Model.CreateContext()) { one.Prefill([2]); oneSession = SettledHeap() - beforeOne; GC.KeepAlive(one); }

        long before = SettledHeap();
        long workingBefore = Environment.WorkingSet;
        long cancelled = 0;
        const int stressRounds = 2;
        for (int i = 0; i < stressRounds; i++) cancelled += await StressRound(jobs, twins, problems);
        long after = SettledHeap();
        TestContext.Out.WriteLine($"{stressRounds} rounds × {jobs.Count} runs on {Workers} threads ({jobs.Count(j => j.CancelAfterPieces < 0)} per round never cancelled; {cancelled} runs cancelled in all): " +
                                  $"managed heap {before:N0} → {after:N0} B, working set {workingBefore / 1024:N0} → {Environment.WorkingSet / 1024:N0} KiB");
        Assert.That(problems, Is.Empty, string.Join("\n", problems.Take(5)));
        Assert.That(cancelled, Is.GreaterThanOrEqualTo(stressRounds * jobs.Count / 4), "the seeds cancel a good share of the runs");
        // One leaked session would keep its activation buffers (about 1.6 MB: demo model, 128-token chunks); 64 runs
        // leak-free leave only a little runtime bookkeeping, so the heap must grow by less than one session.
        TestContext.Out.WriteLine($"one session holds {oneSession:N0} B of managed memory");
        Assert.That(oneSession, Is.GreaterThan(100_000), "fixture sanity: a session's buffers are measurable");
        Assert.That(after - before, Is.LessThan(oneSession), "managed memory after a full collection is back where it was (no leaked session)");
    }

    private static long SettledHeap()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
