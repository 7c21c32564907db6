using System.Diagnostics;
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
        string dll = Path.Combine(AppContext.BaseDirectory, "gemma.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            StandardInputEncoding = new UTF8Encoding(false),
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        // Never pick up a real model from the machine running the tests.
        psi.Environment["GEMMA_MODEL"] = null;
        psi.Environment["HF_HUB_CACHE"] = Path.Combine(Path.GetTempPath(), "gemma-tests-no-hf-cache");
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        if (input != null) { p.StandardInput.Write(input); }
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"gemma {string.Join(' ', args)} did not finish in 120 s");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
