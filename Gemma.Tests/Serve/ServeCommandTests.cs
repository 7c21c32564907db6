using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Gemma.Tests.Cli;
using NUnit.Framework;

namespace Gemma.Tests.Serve;

/// <summary>The <c>gemma serve</c> command as a process: it binds, says where, serves, and refuses bad options.</summary>
[Category("Serve")]
[NonParallelizable]
public class ServeCommandTests
{
    [Test]
    public async Task ServeStartsOnAFreeLoopbackPortAndAnswers()
    {
        using Process p = CliProcess.Start(null, "serve", "--port", "0", "--api-key", "k1", "--context", "512", "-t", "1");
        try
        {
            string? address = null;
            var log = new StringBuilder();
            DateTime end = DateTime.UtcNow.AddSeconds(60);
            while (address == null && DateTime.UtcNow < end)
            {
                string? line = await p.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
                if (line == null) break;
                log.AppendLine(line);
                Match m = Regex.Match(line, @"ready — OpenAI API at (http://127\.0\.0\.1:\d+/)v1");
                if (m.Success) address = m.Groups[1].Value;
            }
            Assert.That(address, Is.Not.Null, log.ToString());
            using var http = new HttpClient { BaseAddress = new Uri(address!) };
            using (HttpResponseMessage health = await http.GetAsync("/health")) Assert.That((int)health.StatusCode, Is.EqualTo(200));
            using (HttpResponseMessage noKey = await http.GetAsync("/v1/models")) Assert.That((int)noKey.StatusCode, Is.EqualTo(401));
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = new StringContent("{\"prompt\":\"Debian\",\"max_tokens\":4,\"temperature\":0}", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "k1");
            using HttpResponseMessage ok = await http.SendAsync(request);
            Assert.That((int)ok.StatusCode, Is.EqualTo(200), await ok.Content.ReadAsStringAsync());
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
    }

    [TestCase("--parallel", "0")]
    [TestCase("--queue", "0")]
    [TestCase("--port", "70000")]
    public void BadOptionsAreUsageErrors(string option, string value)
    {
        CliProcess.Result r = CliProcess.Run("serve", option, value);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.Contain(option));
    }

    [Test]
    public void AHostThatIsNotAnAddressIsRefused()
    {
        CliProcess.Result r = CliProcess.Run("serve", "--host", "example.invalid", "--port", "0");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Stderr);
        Assert.That(r.Stderr, Does.Contain("--host"));
    }
}
