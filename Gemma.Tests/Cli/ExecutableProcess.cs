using System.Diagnostics;
using System.Text;

namespace Gemma.Tests.Cli;

/// <summary>
/// Runs an executable (an app host, a bundled or Native AOT gemma, an installed tool) in a chosen working folder,
/// with the same clean model environment as <see cref="CliProcess"/>.
/// </summary>
internal static class ExecutableProcess
{
    public static CliProcess.Result Run(string executable, string workingDirectory, IDictionary<string, string?>? env, params string[] args) =>
        Run(TimeSpan.FromSeconds(300), executable, workingDirectory, env, args);

    public static CliProcess.Result Run(TimeSpan timeout, string executable, string workingDirectory, IDictionary<string, string?>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["GEMMA_MODEL"] = null;
        psi.Environment["HF_HUB_CACHE"] = Path.Combine(Path.GetTempPath(), "gemma-tests-no-hf-cache");
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{executable} {string.Join(' ', args)} did not finish in {timeout.TotalSeconds} s");
        }
        return new CliProcess.Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
