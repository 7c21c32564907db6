using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Gemma.Cli.Serve;
using NUnit.Framework;
using GemmaMessage = Gemma.Core.Tokenization.GemmaChatMessage;

namespace Gemma.Tests.Serve;

/// <summary>
/// The chat page at <c>/</c> in a real headless browser (Debian's chromium, installed by
/// scripts/install-test-deps.sh): it must stream a reply through fetch + ReadableStream and show exactly the text the
/// library generates.
/// </summary>
[Category("Serve")]
[NonParallelizable]
public class ChatPageBrowserTests
{
    private static string Chromium()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            foreach (string name in new[] { "chromium", "chromium-browser" })
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        Assert.Fail("chromium is not installed: run `bash scripts/install-test-deps.sh` (scripts/test.sh does).");
        return null!;
    }

    [Test]
    public async Task ThePageStreamsAReplyInHeadlessChromium()
    {
        string browser = Chromium();
        await using GemmaServer server = await GemmaServer.StartAsync(new ServerOptions { Port = 0 }, () => ServeTestServer.Model, ownsModel: false);
        await server.Loaded;
        const string Question = "Debian のパッケージ管理について";
        string expected = ServeTestServer.Greedy(ServeTestServer.ChatIds(GemmaMessage.User(Question)), 24);
        string url = new Uri(server.BaseAddress, "/?q=" + Uri.EscapeDataString(Question) + "&max=24&temperature=0").ToString();

        (Process process, string profile) = Launch(browser, url);
        try
        {
            // The page streams its reply; poll it over the DevTools protocol until the message is marked done.
            using var devtools = await DevTools.ConnectAsync(profile, TimeSpan.FromSeconds(30));
            const string Probe = "(() => { const m = document.querySelector('.msg.assistant'); const u = document.querySelector('.msg.user');"
                + " return m && m.dataset.done === 'true' ? JSON.stringify({ text: m.textContent, cls: m.className, user: u ? u.textContent : null }) : null; })()";
            DateTime end = DateTime.UtcNow.AddSeconds(60);
            string? state = null;
            while (state == null && DateTime.UtcNow < end)
            {
                state = await devtools.EvaluateAsync(Probe);
                if (state == null) await Task.Delay(100);
            }
            Assert.That(state, Is.Not.Null, "the page did not finish its reply within 60 s");
            using JsonDocument page = JsonDocument.Parse(state!);
            Assert.That(page.RootElement.GetProperty("cls").GetString(), Is.EqualTo("msg assistant"), state);
            Assert.That(page.RootElement.GetProperty("user").GetString(), Is.EqualTo(Question));
            Assert.That(page.RootElement.GetProperty("text").GetString(), Is.EqualTo(expected));
        }
        finally
        {
            await CloseAsync(process, profile);
        }
    }

    /// <summary>
    /// CORS in a real browser: a document of one server (its origin) calls the API of two others with the headers the
    /// JS SDK sends (Authorization, JSON, x-stainless-*: a preflight). The server started with <c>--cors</c> naming
    /// that origin answers; the default one stays unreadable to the page.
    /// </summary>
    [Test]
    public async Task ACrossOriginPageReadsTheApiOnlyWhenItsOriginIsAllowed()
    {
        string browser = Chromium();
        await using GemmaServer page = await GemmaServer.StartAsync(new ServerOptions { Port = 0 }, () => ServeTestServer.Model, ownsModel: false);
        await page.Loaded;
        string origin = page.BaseAddress.GetLeftPart(UriPartial.Authority);
        await using ServeTestServer allowed = await ServeTestServer.StartAsync(new ServerOptions { CorsOrigins = [origin] });
        await using ServeTestServer closed = await ServeTestServer.StartAsync();
        // /health, not the chat page: the page's Content-Security-Policy keeps its own fetches same-origin.
        (Process process, string profile) = Launch(browser, new Uri(page.BaseAddress, "health").ToString());
        try
        {
            using var devtools = await DevTools.ConnectAsync(profile, TimeSpan.FromSeconds(30));
            // Wait until the page has replaced the first about:blank document (a navigation would drop window's state).
            string? loaded = null;
            for (DateTime end = DateTime.UtcNow.AddSeconds(30); loaded == null && DateTime.UtcNow < end; await Task.Delay(50))
                loaded = await devtools.EvaluateAsync($"location.origin === '{origin}' && document.readyState === 'complete' ? 'yes' : null");
            Assert.That(loaded, Is.EqualTo("yes"), "the page loaded");
            string Fetch(ServeTestServer api, string slot) =>
                $"(fetch('{api.ApiBase}/chat/completions', {{ method: 'POST', headers: {{ 'Authorization': 'Bearer {ServeTestServer.Key}', 'Content-Type': 'application/json', 'x-stainless-os': 'Linux' }},"
                + " body: JSON.stringify({ messages: [{ role: 'user', content: 'apt' }], max_tokens: 2 }) })"
                + $".then(r => r.json()).then(j => window.{slot} = 'ok ' + j.object, e => window.{slot} = 'error ' + e.name), 'started')";
            Assert.That(await devtools.EvaluateAsync(Fetch(allowed, "gemmaAllowed")), Is.EqualTo("started"));
            Assert.That(await devtools.EvaluateAsync(Fetch(closed, "gemmaClosed")), Is.EqualTo("started"));
            string? a = null, c = null;
            for (DateTime end = DateTime.UtcNow.AddSeconds(30); (a == null || c == null) && DateTime.UtcNow < end; await Task.Delay(50))
            {
                a = await devtools.EvaluateAsync("window.gemmaAllowed || null");
                c = await devtools.EvaluateAsync("window.gemmaClosed || null");
            }
            Assert.That(a, Is.EqualTo("ok chat.completion"), "the allowed origin reads the reply");
            Assert.That(c, Is.EqualTo("error TypeError"), "without --cors the browser blocks the page");
        }
        finally
        {
            await CloseAsync(process, profile);
        }
    }

    private static (Process, string Profile) Launch(string browser, string url)
    {
        string profile = Directory.CreateTempSubdirectory("gemma-chromium-").FullName;
        var launch = new ProcessStartInfo(browser) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            $"--user-data-dir={profile}", "--remote-debugging-port=0", url })
            launch.ArgumentList.Add(arg);
        var process = Process.Start(launch)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, profile);
    }

    private static async Task CloseAsync(Process process, string profile)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        try { Directory.Delete(profile, recursive: true); } catch (IOException) { }
    }

    /// <summary>Just enough of the Chrome DevTools protocol: Runtime.evaluate on the first page target.</summary>
    private sealed class DevTools : IDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private int _id;

        public static async Task<DevTools> ConnectAsync(string profile, TimeSpan limit)
        {
            DateTime end = DateTime.UtcNow + limit;
            string portFile = Path.Combine(profile, "DevToolsActivePort");
            while (!File.Exists(portFile) || File.ReadAllLines(portFile).Length == 0)
            {
                if (DateTime.UtcNow > end) throw new TimeoutException("chromium did not open its DevTools port.");
                await Task.Delay(50);
            }
            int port = int.Parse(File.ReadAllLines(portFile)[0]);
            using var http = new HttpClient();
            string? socketUrl = null;
            while (socketUrl == null)
            {
                using JsonDocument targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"));
                socketUrl = targets.RootElement.EnumerateArray().Where(t => t.GetProperty("type").GetString() == "page")
                    .Select(t => t.GetProperty("webSocketDebuggerUrl").GetString()).FirstOrDefault();
                if (socketUrl == null)
                {
                    if (DateTime.UtcNow > end) throw new TimeoutException("chromium has no page target.");
                    await Task.Delay(50);
                }
            }
            var devtools = new DevTools();
            await devtools._socket.ConnectAsync(new Uri(socketUrl), CancellationToken.None);
            return devtools;
        }

        /// <summary>Evaluates an expression that returns a string or null.</summary>
        public async Task<string?> EvaluateAsync(string expression)
        {
            int id = ++_id;
            string request = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["id"] = id, ["method"] = "Runtime.evaluate",
                ["params"] = new Dictionary<string, object> { ["expression"] = expression, ["returnByValue"] = true },
            });
            await _socket.SendAsync(Encoding.UTF8.GetBytes(request), WebSocketMessageType.Text, true, CancellationToken.None);
            var buffer = new byte[1 << 16];
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult part;
                do
                {
                    part = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                    message.Write(buffer, 0, part.Count);
                } while (!part.EndOfMessage);
                using JsonDocument reply = JsonDocument.Parse(message.ToArray());
                if (!reply.RootElement.TryGetProperty("id", out JsonElement rid) || rid.GetInt32() != id) continue;  // an event
                JsonElement value = reply.RootElement.GetProperty("result").GetProperty("result");
                return value.TryGetProperty("value", out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}
