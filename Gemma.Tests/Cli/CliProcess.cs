using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Gemma.Tests.Cli;

/// <summary>Runs the real <c>gemma</c> executable (gemma.dll beside the tests) as a child process.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => Run(null, args);

    public static Result Run(IDictionary<string, string?>? env, params string[] args) => Run(env, null, args);

    public static Result RunWithInput(string input, params string[] args) => Run(null, input, args);

    private static Result Run(IDictionary<string, string?>? env, string? input, string[] args)
    {
        using Process p = Start(env, args);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Task writer = Task.Run(() =>
        {
            try
            {
                if (input != null) p.StandardInput.Write(input);
                p.StandardInput.Close();
            }
            catch (IOException)
            {
                // The process stopped reading (e.g. it rejected a prompt that is too long): that is its answer.
            }
        });
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"gemma {string.Join(' ', args)} did not finish in 120 s");
        }
        writer.Wait();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts gemma with every stream redirected; the caller drives stdin and reads the outputs.</summary>
    public static Process Start(IDictionary<string, string?>? env, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "gemma.dll");
        // A test run started as a background job of a non-interactive shell (`bash .ci/run &`) has SIGINT ignored, and
        // children inherit that (the .NET runtime then keeps it ignored, as Unix programs should). Give gemma the
        // default disposition back so the Ctrl-C tests test gemma, not how the suite was launched.
        bool resetSigInt = SigIntIgnored();
        var psi = new ProcessStartInfo(resetSigInt ? "env" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            StandardInputEncoding = new UTF8Encoding(false),
            UseShellExecute = false,
        };
        if (resetSigInt) { psi.ArgumentList.Add("--default-signal=INT"); psi.ArgumentList.Add("dotnet"); }
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        // Never pick up a real model from the machine running the tests.
        psi.Environment["GEMMA_MODEL"] = null;
        psi.Environment["HF_HUB_CACHE"] = Path.Combine(Path.GetTempPath(), "gemma-tests-no-hf-cache");
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    /// <summary>Whether this process ignores SIGINT (Linux: bit 1 of the SigIgn mask in /proc/self/status).</summary>
    private static bool SigIntIgnored()
    {
        if (!OperatingSystem.IsLinux()) return false;
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("SigIgn:", StringComparison.Ordinal))
                return (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (2 - 1))) != 0;
        return false;
    }

    /// <summary>Sends SIGINT (what Ctrl-C sends) to a process; Unix only.</summary>
    public static void Interrupt(Process p)
    {
        if (Kill(p.Id, 2) != 0) throw new InvalidOperationException($"kill(SIGINT) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
