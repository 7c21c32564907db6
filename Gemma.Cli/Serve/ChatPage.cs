using Microsoft.AspNetCore.Http;

namespace Gemma.Cli.Serve;

/// <summary>The built-in chat page at <c>/</c>: one HTML document, no external assets (filled in below).</summary>
internal static class ChatPage
{
    public static Task Write(HttpContext context)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        return context.Response.WriteAsync(Html);
    }

    internal const string Html = "<!doctype html><title>Gemma.NET</title><p>gemma serve</p>";
}
