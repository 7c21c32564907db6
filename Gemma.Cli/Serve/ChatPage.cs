using Microsoft.AspNetCore.Http;

namespace Gemma.Cli.Serve;

/// <summary>
/// The built-in chat page at <c>/</c>: one self-contained HTML document (inline CSS and script, no external assets)
/// that streams replies from <c>/v1/chat/completions</c> with <c>fetch</c> and a <c>ReadableStream</c> reader.
/// The API key, if the server needs one, is typed into the page and kept in the browser's localStorage.
/// For tests and links, <c>/?q=TEXT</c> sends TEXT on load (<c>&amp;max=N</c> caps the reply, <c>&amp;temperature=T</c> sets it).
/// </summary>
internal static class ChatPage
{
    public static Task Write(HttpContext context)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        // Everything the page runs is inline: forbid any other origin.
        context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";
        return context.Response.WriteAsync(Html);
    }

    internal const string Html = """
<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gemma.NET chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: .5em 1em; background: #234; color: #fff; display: flex; gap: 1em; align-items: center; }
  header input { flex: 0 1 16em; }
  #log { flex: 1; overflow-y: auto; padding: 1em; }
  .msg { white-space: pre-wrap; margin: .4em 0; padding: .5em .8em; border-radius: .5em; max-width: 80%; }
  .user { background: #def; margin-left: auto; }
  .assistant { background: #eee; }
  .error { background: #fdd; }
  form { display: flex; gap: .5em; padding: .5em 1em; border-top: 1px solid #ccc; }
  textarea { flex: 1; height: 3em; }
</style>
</head>
<body>
<header><strong>Gemma.NET</strong><span id="model"></span>
  <label>API key <input id="key" type="password" autocomplete="off"></label>
  <button id="reset" type="button">New chat</button></header>
<div id="log"></div>
<form id="form"><textarea id="input" placeholder="Message (Enter sends, Shift+Enter new line)"></textarea>
  <button id="send">Send</button><button id="stop" type="button" disabled>Stop</button></form>
<script>
"use strict";
const log = document.getElementById("log"), input = document.getElementById("input"), key = document.getElementById("key");
const send = document.getElementById("send"), stop = document.getElementById("stop");
let history = [], controller = null;
key.value = localStorage.getItem("gemma-key") || "";
key.onchange = () => localStorage.setItem("gemma-key", key.value);
function headers() {
  const h = { "Content-Type": "application/json" };
  if (key.value) h["Authorization"] = "Bearer " + key.value;
  return h;
}
function add(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}
fetch("/v1/models", { headers: headers() }).then(r => r.ok ? r.json() : null)
  .then(j => { if (j) document.getElementById("model").textContent = j.data[0].id; }).catch(() => {});
async function ask(text, maxTokens, temperature) {
  history.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  send.disabled = true; stop.disabled = false;
  controller = new AbortController();
  let reply = "";
  try {
    const body = { messages: history, stream: true };
    if (maxTokens) body.max_tokens = maxTokens;
    if (temperature !== undefined && !isNaN(temperature)) body.temperature = temperature;
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const err = await response.json().catch(() => null);
      throw new Error(err && err.error ? err.error.message : "HTTP " + response.status);
    }
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices.length ? chunk.choices[0].delta : null;
        if (delta && delta.content) { reply += delta.content; out.textContent = reply; log.scrollTop = log.scrollHeight; }
      }
    }
    out.dataset.done = "true";
  } catch (e) {
    if (e.name !== "AbortError") { out.className = "msg error"; out.textContent = reply + " [" + e.message + "]"; }
    out.dataset.done = "true";
  } finally {
    history.push({ role: "assistant", content: reply });
    send.disabled = false; stop.disabled = true; controller = null;
    document.body.dataset.idle = "true";
  }
}
document.getElementById("form").onsubmit = e => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  document.body.dataset.idle = "false";
  ask(text);
};
input.onkeydown = e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("form").requestSubmit(); } };
stop.onclick = () => { if (controller) controller.abort(); };
document.getElementById("reset").onclick = () => { history = []; log.textContent = ""; };
const params = new URLSearchParams(location.search);
if (params.get("q")) { document.body.dataset.idle = "false"; ask(params.get("q"), parseInt(params.get("max") || "0", 10), parseFloat(params.get("temperature"))); }
</script>
</body>
</html>
""";
}
