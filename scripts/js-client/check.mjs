// Drives a running `gemma serve` with the official `openai` JS SDK, LangChain's ChatOpenAI and the Vercel AI SDK, plus raw HTTP edge
// cases, and prints one PASS/FAIL line per check (exit code 1 when any fails). Run through scripts/check-js-client.sh.
//   GEMMA_BASE_URL  the server root (http://127.0.0.1:PORT/)     GEMMA_API_KEY  its --api-key
//   GEMMA_CAPTURE   a folder: every request body the SDKs send is written there (NNN-label.json) for replay in tests
import OpenAI from 'openai';
import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';

const base = (process.env.GEMMA_BASE_URL ?? 'http://127.0.0.1:8080/').replace(/\/?$/, '/');
const key = process.env.GEMMA_API_KEY ?? 'none';
const capture = process.env.GEMMA_CAPTURE;
let captured = 0, label = 'request';
if (capture) mkdirSync(capture, { recursive: true });

/** fetch that records the JSON bodies the SDKs send (for the C# replay tests). */
async function recordingFetch(url, init) {
  if (capture && typeof init?.body === 'string') {
    const name = `${String(++captured).padStart(3, '0')}-${label}.json`;
    writeFileSync(`${capture}/${name}`, JSON.stringify({ url: String(url).replace(base, '/'), method: init.method, body: JSON.parse(init.body) }, null, 2));
  }
  return fetch(url, init);
}

const client = new OpenAI({ baseURL: base + 'v1', apiKey: key, maxRetries: 0, fetch: recordingFetch });
let failures = 0, passes = 0;

async function check(name, fn) {
  label = name.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase();
  try {
    await fn();
    passes++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e?.status ? `${e.status} ${JSON.stringify(e.error)}` : ''} ${e?.stack ?? e}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** The SDK must raise its typed error with OpenAI's fields. */
async function expectError(promise, ErrorClass, status, param) {
  try {
    await promise;
  } catch (e) {
    assert(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${e?.constructor?.name}: ${e}`);
    assert(e.status === status, `status ${e.status}, expected ${status}`);
    assert(typeof e.error?.message === 'string' && e.error.message.length > 0, `no error.message: ${JSON.stringify(e.error)}`);
    assert(typeof e.type === 'string', `no error.type: ${JSON.stringify(e.error)}`);
    if (param !== undefined) assert(e.param === param, `param ${e.param}, expected ${param}`);
    return e;
  }
  throw new Error(`expected ${ErrorClass.name} (${status})`);
}

async function raw(path, { method = 'POST', body, headers = {}, auth = true } = {}) {
  const h = { ...headers };
  if (auth) h.authorization = `Bearer ${key}`;
  if (typeof body === 'string' && !h['content-type']) h['content-type'] = 'application/json';
  const r = await fetch(base + path.replace(/^\//, ''), { method, body, headers: h });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { }
  return { status: r.status, headers: r.headers, text, json };
}

function expectApiError(r, status, param) {
  assert(r.status === status, `status ${r.status}, expected ${status}: ${r.text.slice(0, 300)}`);
  assert(typeof r.json?.error?.message === 'string', `not an OpenAI error object: ${r.text.slice(0, 300)}`);
  assert(typeof r.json.error.type === 'string', 'error.type');
  if (param !== undefined) assert(r.json.error.param === param, `param ${r.json.error.param}, expected ${param}`);
}

const user = (text) => ({ role: 'user', content: text });
const weather = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, unit: { type: 'string', enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false },
    strict: true,
  },
};
const time = {
  type: 'function',
  function: { name: 'get_time', description: 'Local time in a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'] } },
};

let modelId;

await check('models.list and models.retrieve', async () => {
  const page = await client.models.list();
  const models = [];
  for await (const m of page) models.push(m);
  assert(models.length === 1, `one model, got ${models.length}`);
  modelId = models[0].id;
  assert(models[0].object === 'model' && Number.isInteger(models[0].created) && typeof models[0].owned_by === 'string', JSON.stringify(models[0]));
  const one = await client.models.retrieve(modelId);
  assert(one.id === modelId && one.object === 'model', JSON.stringify(one));
});

await check('models.retrieve of an unknown model is NotFoundError', async () => {
  const e = await expectError(client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
  assert(e.code === 'model_not_found', `code ${e.code}`);
});

let whole;
await check('chat.completions.create (developer role, content parts, name, max_completion_tokens, stop, seed, user, metadata, store, n=1)', async () => {
  whole = await client.chat.completions.create({
    model: modelId,
    messages: [
      { role: 'developer', content: 'Answer briefly.' },
      { role: 'user', name: 'alice', content: [{ type: 'text', text: 'Debian とは' }, { type: 'text', text: '何ですか？' }] },
    ],
    temperature: 0, max_completion_tokens: 16, stop: ['\n\n\n'], seed: 42, user: 'u-1', metadata: { run: 'check' }, store: false, n: 1,
  });
  assert(whole.object === 'chat.completion' && whole.id.startsWith('chatcmpl-') && Number.isInteger(whole.created), JSON.stringify(whole));
  const c = whole.choices[0];
  assert(c.index === 0 && c.message.role === 'assistant' && typeof c.message.content === 'string', JSON.stringify(c));
  assert(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  assert('refusal' in c.message && c.message.refusal === null, `message.refusal should be null: ${JSON.stringify(c.message)}`);
  assert(c.logprobs === null, 'logprobs null');
  const u = whole.usage;
  assert(u.prompt_tokens > 0 && u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens, JSON.stringify(u));
  assert(Number.isInteger(u.prompt_tokens_details?.cached_tokens), 'usage.prompt_tokens_details.cached_tokens');
  assert(Number.isInteger(u.completion_tokens_details?.reasoning_tokens), 'usage.completion_tokens_details.reasoning_tokens');
  assert(typeof whole.system_fingerprint === 'string', 'system_fingerprint');
});

await check('streaming with include_usage equals the whole reply', async () => {
  const stream = await client.chat.completions.create({
    model: modelId,
    messages: [{ role: 'developer', content: 'Answer briefly.' }, { role: 'user', content: [{ type: 'text', text: 'Debian とは' }, { type: 'text', text: '何ですか？' }] }],
    temperature: 0, max_completion_tokens: 16, stop: ['\n\n\n'], stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, ids = new Set(), chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    ids.add(chunk.id);
    assert(chunk.object === 'chat.completion.chunk', chunk.object);
    if (chunk.usage) { usage = chunk.usage; assert(chunk.choices.length === 0, 'the usage chunk has no choices'); }
    for (const c of chunk.choices) { text += c.delta.content ?? ''; finish ??= c.finish_reason; }
  }
  assert(ids.size === 1, 'one id for all chunks');
  assert(text === whole.choices[0].message.content, `streamed ${JSON.stringify(text)} != whole ${JSON.stringify(whole.choices[0].message.content)}`);
  assert(['stop', 'length'].includes(finish), `finish ${finish}`);
  assert(usage?.completion_tokens === whole.usage.completion_tokens, `usage ${JSON.stringify(usage)}`);
  assert(chunks > 3, 'in pieces');
});

await check('chat.completions.stream helper: finalChatCompletion', async () => {
  const runner = client.chat.completions.stream({ model: modelId, messages: [user('apt の使い方')], temperature: 0, max_tokens: 12 });
  let deltas = '';
  runner.on('content', (d) => { deltas += d; });
  const final = await runner.finalChatCompletion();
  assert(final.choices[0].message.content === deltas, 'final content equals the deltas');
  assert(deltas.length > 0, 'some text');
});

let call;
await check('tools: tool_choice required, arguments parse and satisfy the schema', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages: [user('東京の天気は？')], tools: [weather, time], tool_choice: 'required', temperature: 0, max_tokens: 60 });
  const c = r.choices[0];
  assert(c.finish_reason === 'tool_calls', `finish ${c.finish_reason}`);
  assert(c.message.content === null, 'content null with tool_calls');
  call = c.message.tool_calls[0];
  assert(call.type === 'function' && call.id.length > 0 && ['get_weather', 'get_time'].includes(call.function.name), JSON.stringify(call));
  const args = JSON.parse(call.function.arguments);
  assert(typeof args.city === 'string', JSON.stringify(args));
  // The whole assistant message goes back as the SDK returned it (refusal, annotations, … included), then the result.
  const next = await client.chat.completions.create({
    model: modelId, temperature: 0, max_tokens: 20, tools: [weather, time],
    messages: [user('東京の天気は？'), c.message, { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temp: 21, sky: 'clear' }) }],
  });
  const m = next.choices[0].message;
  assert(typeof m.content === 'string' || m.tool_calls?.length > 0, JSON.stringify(m));
});

await check('tools: named function choice, assistant history with content null', async () => {
  const r = await client.chat.completions.create({
    model: modelId, temperature: 0, max_tokens: 60, tools: [weather, time], tool_choice: { type: 'function', function: { name: 'get_time' } },
    messages: [
      { role: 'system', content: 'You can call tools.' },
      user('大阪は？'),
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"大阪","unit":"c"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: '晴れ' }] },
      user('時間は？'),
    ],
  });
  assert(r.choices[0].message.tool_calls[0].function.name === 'get_time', JSON.stringify(r.choices[0].message));
});

await check('tools: parallel_tool_calls streamed, assembled by the stream helper', async () => {
  const runner = client.chat.completions.stream({
    model: modelId, messages: [user('東京と大阪の天気')], tools: [weather, time], tool_choice: 'required', parallel_tool_calls: true, temperature: 0, max_tokens: 120,
  });
  const final = await runner.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert(final.choices[0].finish_reason === 'tool_calls', `finish ${final.choices[0].finish_reason}`);
  assert(calls.length >= 1 && new Set(calls.map((c) => c.id)).size === calls.length, JSON.stringify(calls));
  for (const c of calls) JSON.parse(c.function.arguments);
  const whole = await client.chat.completions.create({
    model: modelId, messages: [user('東京と大阪の天気')], tools: [weather, time], tool_choice: 'required', parallel_tool_calls: true, temperature: 0, max_tokens: 120,
  });
  assert(JSON.stringify(whole.choices[0].message.tool_calls.map((c) => [c.function.name, c.function.arguments]))
    === JSON.stringify(calls.map((c) => [c.function.name, c.function.arguments])), 'streamed calls equal the whole reply\'s');
});

await check('runTools helper: calls a JS function and sends its result back (streaming)', async () => {
  let called = 0;
  const runner = client.chat.completions.runTools({
    model: modelId, messages: [user('東京の天気は？')], temperature: 0, max_tokens: 60, stream: true, tool_choice: 'auto',
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather in a city', parse: JSON.parse,
      parameters: weather.function.parameters, function: (args) => { called++; return { city: args.city, temp: 21 }; } } }],
  }, { maxChatCompletions: 3 });
  await runner.done();
  const messages = runner.messages;
  assert(messages.every((m) => ['user', 'assistant', 'tool'].includes(m.role)), JSON.stringify(messages));
  if (called > 0) assert(messages.some((m) => m.role === 'tool'), 'the result went back');
});

await check('tool_choice none and auto', async () => {
  const none = await client.chat.completions.create({ model: modelId, messages: [user('天気')], tools: [weather], tool_choice: 'none', temperature: 0, max_tokens: 8 });
  assert(typeof none.choices[0].message.content === 'string' && !none.choices[0].message.tool_calls, JSON.stringify(none.choices[0]));
  const auto = await client.chat.completions.create({ model: modelId, messages: [user('天気')], tools: [weather], tool_choice: 'auto', temperature: 0, max_tokens: 60 });
  assert(auto.choices[0].message.content !== undefined, JSON.stringify(auto.choices[0]));
});

const packageSchema = {
  type: 'object', properties: { name: { type: 'string', maxLength: 20 }, version: { type: 'integer' } }, required: ['name', 'version'], additionalProperties: false,
};
await check('response_format json_schema strict, through chat.completions.parse', async () => {
  const r = await client.chat.completions.parse({
    model: modelId, messages: [user('パッケージ')], temperature: 0, max_tokens: 60,
    response_format: { type: 'json_schema', json_schema: { name: 'package', strict: true, schema: packageSchema } },
  });
  const p = r.choices[0].message.parsed;
  assert(p && typeof p.name === 'string' && Number.isInteger(p.version), JSON.stringify(r.choices[0].message));
});

await check('response_format json_object', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages: [user('JSON で')], temperature: 0, max_tokens: 60, response_format: { type: 'json_object' } });
  const v = JSON.parse(r.choices[0].message.content);
  assert(v !== null && typeof v === 'object' && !Array.isArray(v), r.choices[0].message.content);
});

await check('completions.create, whole and streamed', async () => {
  const r = await client.completions.create({ model: modelId, prompt: 'Debian システムでは', max_tokens: 10, temperature: 0, stop: '\n\n\n' });
  assert(r.object === 'text_completion' && typeof r.choices[0].text === 'string' && r.usage.completion_tokens > 0, JSON.stringify(r));
  const s = await client.completions.create({ model: modelId, prompt: 'Debian システムでは', max_tokens: 10, temperature: 0, stop: '\n\n\n', stream: true, stream_options: { include_usage: true } });
  let text = '', usage = null;
  for await (const chunk of s) { if (chunk.usage) usage = chunk.usage; for (const c of chunk.choices) text += c.text; }
  assert(text === r.choices[0].text, `streamed ${JSON.stringify(text)} != ${JSON.stringify(r.choices[0].text)}`);
  assert(usage?.completion_tokens === r.usage.completion_tokens, 'usage chunk');
});

await check('completions: prompt as a one-string array and as token ids; no usage chunk unless asked', async () => {
  const a = await client.completions.create({ model: modelId, prompt: ['Debian システムでは'], max_tokens: 6, temperature: 0 });
  const b = await client.completions.create({ model: modelId, prompt: 'Debian システムでは', max_tokens: 6, temperature: 0 });
  assert(a.choices[0].text === b.choices[0].text, 'one-string array = string');
  const ids = await client.completions.create({ model: modelId, prompt: [2, 100, 101], max_tokens: 3, temperature: 0 });
  assert(ids.usage.prompt_tokens === 3, JSON.stringify(ids.usage));
  const s = await client.chat.completions.create({ model: modelId, messages: [user('x')], max_tokens: 3, stream: true });
  for await (const chunk of s) assert(!chunk.usage, 'no usage chunk without include_usage');
});

await check('errors: the SDK error classes parse our error bodies', async () => {
  await expectError(client.chat.completions.create({ model: modelId, messages: [user('x')], n: 2 }), OpenAI.BadRequestError, 400, 'n');
  await expectError(client.chat.completions.create({ model: modelId, messages: [user('x')], temperature: 5 }), OpenAI.BadRequestError, 400, 'temperature');
  await expectError(client.chat.completions.create({ model: modelId, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }),
    OpenAI.BadRequestError, 400, 'messages[0].content');
  await expectError(client.chat.completions.create({ model: modelId, messages: [user('x')], logprobs: true, top_logprobs: 2 }), OpenAI.BadRequestError, 400, 'logprobs');
  await expectError(client.chat.completions.create({ model: modelId, messages: [user('x')], max_tokens: 100000 }), OpenAI.BadRequestError, 400);
  const bad = new OpenAI({ baseURL: base + 'v1', apiKey: 'wrong', maxRetries: 0 });
  if (key !== 'none') await expectError(bad.models.list(), OpenAI.AuthenticationError, 401);
  // A stream that fails before its first chunk is an ordinary error response.
  await expectError(client.chat.completions.create({ model: modelId, messages: [user('x')], stream: true, top_p: 7 }), OpenAI.BadRequestError, 400, 'top_p');
});

await check('raw HTTP: charset, duplicate keys, huge numbers, wrong types, gzip body, methods', async () => {
  let r = await raw('/v1/chat/completions', { body: JSON.stringify({ messages: [user('x')], max_tokens: 2 }), headers: { 'content-type': 'application/json; charset=utf-8' } });
  assert(r.status === 200, `charset: ${r.status} ${r.text}`);
  r = await raw('/v1/chat/completions', { body: '{"messages":[{"role":"user","content":"x"}],"max_tokens":2,"max_tokens":3}' });
  expectApiError(r, 400);
  for (const body of ['{"messages":[{"role":"user","content":"x"}],"max_tokens":1e300}', '{"messages":[{"role":"user","content":"x"}],"temperature":1e999}',
    '{"messages":[{"role":"user","content":"x"}],"seed":123456789012345678901234567890}', '{"messages":[{"role":"user","content":"x"}],"max_tokens":2.5}',
    '{"messages":[{"role":"user","content":"x"}],"stop":{"a":1}}', '{"messages":"hi"}', '{"messages":[{"role":"user","content":"x"}],"tools":{}}', '"just a string"', '', 'null']) {
    r = await raw('/v1/chat/completions', { body });
    expectApiError(r, 400);
  }
  r = await raw('/v1/chat/completions', { body: gzipSync(JSON.stringify({ messages: [user('x')], max_tokens: 2 })), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  assert(r.status === 200, `gzip: ${r.status} ${r.text.slice(0, 300)}`);
  r = await raw('/v1/chat/completions', { method: 'GET' });
  expectApiError(r, 405);
  r = await raw('/health', { method: 'HEAD', auth: false });
  assert(r.status === 200, `HEAD /health: ${r.status}`);
  r = await raw('/v1/models', { method: 'HEAD' });
  assert(r.status === 200, `HEAD /v1/models: ${r.status}`);
});

await check('raw HTTP: unknown fields are ignored and named in a header', async () => {
  const r = await raw('/v1/chat/completions', { body: JSON.stringify({ messages: [user('x')], max_tokens: 2, max_token: 5, reasoning_effort: 'low' }) });
  assert(r.status === 200, `${r.status} ${r.text}`);
  assert(r.headers.get('x-gemma-ignored-params') === 'max_token, reasoning_effort', `header: ${r.headers.get('x-gemma-ignored-params')}`);
});

await check('raw HTTP: system message in the middle, assistant greeting first', async () => {
  let r = await raw('/v1/chat/completions', { body: JSON.stringify({ max_tokens: 2, messages: [user('a'), { role: 'assistant', content: 'b' }, { role: 'system', content: 'Be brief.' }, user('c')] }) });
  assert(r.status === 200, `system in the middle: ${r.status} ${r.text}`);
  r = await raw('/v1/chat/completions', { body: JSON.stringify({ max_tokens: 2, messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: 'こんにちは！' }, user('c')] }) });
  assert(r.status === 200, `assistant greeting first: ${r.status} ${r.text}`);
});

// LangChain's ChatOpenAI: optional (only when installed); it builds requests its own way.
let langchain = null;
try { langchain = await import('@langchain/openai'); } catch { console.log('SKIP LangChain (@langchain/openai not installed)'); }
if (langchain) {
  const { ChatOpenAI } = langchain;
  const { z } = await import('zod');
  const llm = new ChatOpenAI({ model: modelId, apiKey: key, temperature: 0, maxTokens: 16, maxRetries: 0, configuration: { baseURL: base + 'v1', fetch: recordingFetch } });

  await check('LangChain ChatOpenAI invoke and stream (usage)', async () => {
    const r = await llm.invoke([['system', 'Answer briefly.'], ['human', 'Debian とは何ですか？']]);
    assert(typeof r.content === 'string' && r.content.length > 0, JSON.stringify(r));
    assert(r.usage_metadata?.input_tokens > 0, `usage ${JSON.stringify(r.usage_metadata)}`);
    let text = '', usage = null;
    for await (const chunk of await llm.stream([['system', 'Answer briefly.'], ['human', 'Debian とは何ですか？']])) {
      text += chunk.content;
      if (chunk.usage_metadata) usage = chunk.usage_metadata;
    }
    assert(text === r.content, `streamed ${JSON.stringify(text)} != ${JSON.stringify(r.content)}`);
    assert(usage?.output_tokens > 0, `stream usage ${JSON.stringify(usage)}`);
  });

  await check('LangChain bindTools (tool_choice any) and tool round trip', async () => {
    const tool = { name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string().max(20) }) };
    const withTools = new ChatOpenAI({ model: modelId, apiKey: key, temperature: 0, maxTokens: 60, maxRetries: 0, configuration: { baseURL: base + 'v1', fetch: recordingFetch } })
      .bindTools([tool], { tool_choice: 'any' });
    const r = await withTools.invoke('東京の天気は？');
    assert(r.tool_calls?.length === 1 && r.tool_calls[0].name === 'get_weather' && typeof r.tool_calls[0].args.city === 'string', JSON.stringify(r.tool_calls));
    const { ToolMessage, HumanMessage } = await import('@langchain/core/messages');
    const next = await llm.invoke([new HumanMessage('東京の天気は？'), r, new ToolMessage({ tool_call_id: r.tool_calls[0].id, content: '晴れ' })]);
    assert(typeof next.content === 'string', JSON.stringify(next));
  });

  await check('LangChain streamed tool call chunks assemble to a valid call', async () => {
    const tool = { name: 'get_weather', description: 'Weather in a city', schema: z.object({ city: z.string().max(20) }) };
    const withTools = new ChatOpenAI({ model: modelId, apiKey: key, temperature: 0, maxTokens: 60, maxRetries: 0, configuration: { baseURL: base + 'v1', fetch: recordingFetch } })
      .bindTools([tool], { tool_choice: 'any' });
    let gathered;
    for await (const chunk of await withTools.stream('東京の天気は？')) gathered = gathered === undefined ? chunk : gathered.concat(chunk);
    assert(gathered.tool_calls?.length === 1 && gathered.tool_calls[0].name === 'get_weather' && typeof gathered.tool_calls[0].args.city === 'string',
      JSON.stringify(gathered.tool_call_chunks));
  });

  await check('LangChain withStructuredOutput (json schema)', async () => {
    const structured = new ChatOpenAI({ model: modelId, apiKey: key, temperature: 0, maxTokens: 60, maxRetries: 0, configuration: { baseURL: base + 'v1', fetch: recordingFetch } })
      .withStructuredOutput(z.object({ name: z.string().max(20), version: z.number().int() }), { method: 'jsonSchema', name: 'package' });
    const v = await structured.invoke('パッケージ');
    assert(typeof v.name === 'string' && Number.isInteger(v.version), JSON.stringify(v));
  });
}

// The Vercel AI SDK's OpenAI-compatible provider: another request builder (tools as its own schema objects,
// structured output through response_format, usage through stream_options).
let aisdk = null;
try { aisdk = { ...(await import('ai')), ...(await import('@ai-sdk/openai-compatible')) }; } catch { console.log('SKIP Vercel AI SDK (ai, @ai-sdk/openai-compatible not installed)'); }
if (aisdk) {
  const { createOpenAICompatible, generateText, streamText, tool, stepCountIs, Output } = aisdk;
  const { z } = await import('zod');
  const provider = createOpenAICompatible({ name: 'gemma', baseURL: base + 'v1', apiKey: key, includeUsage: true, supportsStructuredOutputs: true, fetch: recordingFetch });
  const model = provider(modelId);

  await check('AI SDK generateText and streamText (usage)', async () => {
    const r = await generateText({ model, system: 'Answer briefly.', prompt: 'Debian とは何ですか？', maxOutputTokens: 12, temperature: 0, maxRetries: 0 });
    assert(r.text.length > 0 && ['stop', 'length'].includes(r.finishReason), JSON.stringify({ text: r.text, finish: r.finishReason }));
    assert(r.usage.inputTokens > 0 && r.usage.outputTokens > 0, JSON.stringify(r.usage));
    const s = streamText({ model, system: 'Answer briefly.', prompt: 'Debian とは何ですか？', maxOutputTokens: 12, temperature: 0, maxRetries: 0 });
    let text = '';
    for await (const delta of s.textStream) text += delta;
    assert(text === r.text, `streamed ${JSON.stringify(text)} != ${JSON.stringify(r.text)}`);
    assert((await s.usage).outputTokens === r.usage.outputTokens, 'stream usage');
  });

  await check('AI SDK tools: a required call executed, its result sent back (two steps)', async () => {
    let called = 0;
    const r = await generateText({
      model, prompt: '東京の天気は？', temperature: 0, maxOutputTokens: 60, maxRetries: 0, toolChoice: 'required', stopWhen: stepCountIs(2),
      tools: { get_weather: tool({ description: 'Weather in a city', inputSchema: z.object({ city: z.string().max(20) }), execute: async ({ city }) => { called++; return { city, temp: 21 }; } }) },
      prepareStep: ({ stepNumber }) => (stepNumber === 1 ? { toolChoice: 'none' } : {}),
    });
    assert(called === 1, `tool executed ${called} times`);
    assert(r.steps.length === 2 && typeof r.text === 'string', JSON.stringify(r.steps.map((s) => s.finishReason)));
  });

  await check('AI SDK structured output (json schema)', async () => {
    const r = await generateText({
      model, prompt: 'パッケージ', temperature: 0, maxOutputTokens: 60, maxRetries: 0,
      output: Output.object({ schema: z.object({ name: z.string().max(20), version: z.number().int() }) }),
    });
    assert(typeof r.output.name === 'string' && Number.isInteger(r.output.version), JSON.stringify(r.output));
  });
}

const sdk = JSON.parse(readFileSync(new URL('./node_modules/openai/package.json', import.meta.url))).version;
const version = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
console.log(`openai ${sdk}${langchain ? ', @langchain/openai ' + version('@langchain/openai') : ''}${aisdk ? ', ai ' + version('ai') + ', @ai-sdk/openai-compatible ' + version('@ai-sdk/openai-compatible') : ''}, node ${process.version}: ${passes} passed, ${failures} failed`);
process.exit(failures > 0 ? 1 : 0);
