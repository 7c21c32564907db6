using System.CommandLine;
using Gemma.Cli.Serve;
using Gemma.Core;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma serve</c>: the OpenAI-compatible HTTP server (docs/server.md).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var host = new Option<string>("--host") { Description = "Address to bind (default loopback; 0.0.0.0 exposes the server).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port.", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require Authorization: Bearer KEY on the API (default: $GEMMA_API_KEY, else open)." };
        var parallel = new Option<int>("--parallel", "-np") { Description = "Slots: requests decoded together in one batched pass.", DefaultValueFactory = _ => 4 };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait for a slot (429 beyond).", DefaultValueFactory = _ => 64 };
        var caches = new Option<int>("--extra-caches") { Description = "KV caches kept beyond the slots for prefix reuse.", DefaultValueFactory = _ => 4 };
        var chunk = new Option<int>("--prefill-chunk") { Description = "Prompt tokens prefilled per step beside the decode rows.", DefaultValueFactory = _ => 64 };
        var timeout = new Option<int>("--timeout") { Description = "Seconds a request may take, queue included.", DefaultValueFactory = _ => 600 };
        var name = new Option<string?>("--alias") { Description = "Model id reported by /v1/models (default: the model folder name)." };
        var cors = new Option<string?>("--cors") { Description = "Browser origins allowed to call the API (comma-separated, or *; default none)." };
        var command = new Command("serve", "Serve the model over an OpenAI-compatible HTTP API (chat, completions, streaming, batching, prefix cache).");
        common.AddTo(command);
        foreach (Option o in new Option[] { host, port, apiKey, parallel, queue, caches, chunk, timeout, name, cors }) command.Add(o);
        foreach (Option<int> o in new[] { parallel, queue, chunk, timeout })
            o.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError($"{o.Name} must be at least 1."); });
        caches.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--extra-caches must be ≥ 0."); });
        host.Validators.Add(r =>
        {
            string value = r.GetValueOrDefault<string>() ?? "";
            if (value != "localhost" && !System.Net.IPAddress.TryParse(value, out _)) r.AddError($"--host must be an IP address or 'localhost', got '{value}'.");
        });
        port.Validators.Add(r => { if (r.GetValueOrDefault<int>() is < 0 or > 65535) r.AddError("--port must be in [0, 65535]."); });
        command.SetAction(async (parse, ct) =>
        {
            var options = new ServerOptions
            {
                Host = parse.GetValue(host)!, Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("GEMMA_API_KEY"),
                Parallel = parse.GetValue(parallel), QueueLength = parse.GetValue(queue), ExtraCaches = parse.GetValue(caches),
                PrefillChunk = parse.GetValue(chunk), RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                ContextLength = parse.GetValue(common.Context), ModelName = parse.GetValue(name), Threads = parse.GetValue(common.Threads),
                CorsOrigins = (parse.GetValue(cors) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            };
            GemmaServer server;
            try
            {
                server = await GemmaServer.StartAsync(options, () => common.Load(parse), ownsModel: true);
            }
            catch (Exception e) when (e is IOException or GemmaException)
            {
                Console.Error.WriteLine($"gemma: error: cannot listen on {options.Host}:{options.Port}: {e.Message}");
                return ExitCodes.BadInput;
            }
            await using (server)
            {
                Console.Error.WriteLine($"gemma serve: listening on {server.BaseAddress} (loading the model; /health says 503 until ready)");
                await server.Loaded;
                if (server.LoadError is string error)
                {
                    Console.Error.WriteLine($"gemma: error: {error}");
                    return ExitCodes.BadInput;
                }
                Console.Error.WriteLine($"gemma serve: ready — OpenAI API at {server.BaseAddress}v1, chat page at {server.BaseAddress}");
                try { await server.WaitForShutdownAsync(ct); }
                catch (OperationCanceledException) { }
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
