// The OpenAI-compatible server (js/chat/server.mjs, `cli.mjs serve`) with the official
// `openai` npm package as its client, on the fixture model with a vocabulary: streaming
// and not, an abort by the client, a json_schema request validated by ajv, and the
// failures (malformed JSON, wrong types, oversized bodies, too many clients) as OpenAI's
// error objects with their HTTP status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Ajv from 'ajv';
import * as rwkv from '../../js/rwkv.mjs';
import { startServer } from '../../js/chat/server.mjs';
import { fixtureDir, root, skipNoFixtures } from './helpers.mjs';

const modelFile = path.join(fixtureDir, 'fix-L3-C64-H2.rwkv');
let model, server, client;

before(async () => {
  if (skipNoFixtures) return;
  model = await rwkv.load(modelFile, { cacheDir: mkdtempSync(path.join(tmpdir(), 'rwkv-serve-')) });
  server = await startServer(model, { port: 0, maxClients: 2, maxBodyBytes: 64 << 10 });
  client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await server?.close(); await model?.dispose(); });

const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello the world' }];
// A reply that does not end soon: no newline tokens of the fixture vocabulary (byte 10,
// "\n\n"), so never the blank line that ends a turn.
const endless = { max_tokens: 1e6, logit_bias: { 11: -100, 257: -100 } };

test('the openai client: models, a completion, a stream, a raw completion', { skip: skipNoFixtures }, async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['fix-L3-C64-H2.rwkv']);
  const r = await client.chat.completions.create({ model: 'any', messages, seed: 5, max_tokens: 10 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, 'fix-L3-C64-H2.rwkv');
  const want = await model.chat.completions.create({ messages, seed: 5, max_tokens: 10 });
  assert.equal(r.choices[0].message.content, want.choices[0].message.content);
  assert.equal(r.usage.prompt_tokens, want.usage.prompt_tokens);
  const stream = await client.chat.completions.create({ model: 'any', messages, seed: 5, max_tokens: 10, stream: true, stream_options: { include_usage: true } });
  let text = '', usage = null, finish = null;
  for await (const ch of stream) {
    text += ch.choices[0]?.delta?.content ?? '';
    finish = ch.choices[0]?.finish_reason ?? finish;
    usage = ch.usage ?? usage;
  }
  assert.equal(text, want.choices[0].message.content);
  assert.equal(finish, want.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, want.usage.completion_tokens);
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0, 'the repeated history came from the state cache');
  const c = await client.completions.create({ model: 'any', prompt: 'hello the', seed: 2, max_tokens: 8 });
  assert.equal(c.choices[0].text, (await model.completions.create({ prompt: 'hello the', seed: 2, max_tokens: 8 })).choices[0].text);
  let streamed = '';
  for await (const ch of await client.completions.create({ model: 'any', prompt: 'hello the', seed: 2, max_tokens: 8, stream: true })) streamed += ch.choices[0]?.text ?? '';
  assert.equal(streamed, c.choices[0].text);
});

test('a json_schema request gives a document that validates', { skip: skipNoFixtures }, async () => {
  const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, rain: { type: 'boolean' }, mm: { type: 'number' } }, required: ['city', 'rain'], additionalProperties: false };
  const ajv = new Ajv();
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({
      model: 'any', messages, seed, max_tokens: 200, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
    });
    const doc = JSON.parse(r.choices[0].message.content);
    assert.ok(ajv.validate(schema, doc), ajv.errorsText());
  }
});

test('a client that aborts its stream stops the generation; the server goes on', { skip: skipNoFixtures, timeout: 60000 }, async () => {
  const stream = await client.chat.completions.create({ model: 'any', messages, ...endless, stream: true });
  let n = 0;
  for await (const ch of stream) if (ch.choices[0]?.delta?.content && ++n === 3) break;  // the client closes the connection
  assert.equal(n, 3);
  // The next request is served at once: the aborted one does not hold the queue for 2000 tokens.
  const started = Date.now();
  const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 3 });
  assert.equal(r.object, 'chat.completion');
  assert.ok(Date.now() - started < 20000);
  for (let i = 0; i < 50 && (await model.memory()).sessions > 0; ++i) await new Promise((res) => setTimeout(res, 20));
  assert.equal((await model.memory()).sessions, 0);
});

test('failures are OpenAI error objects with the HTTP status', { skip: skipNoFixtures }, async () => {
  const bad = await client.chat.completions.create({ model: 'any', messages, temperature: 'hot' }).then(() => null, (e) => e);
  assert.ok(bad instanceof OpenAI.BadRequestError);
  assert.equal(bad.status, 400);
  assert.equal(bad.param, 'temperature');
  assert.equal(bad.type, 'invalid_request_error');
  const post = (route, body, headers = {}, signal) => fetch(`${server.url}${route}`, { method: 'POST', body, signal, headers: { 'content-type': 'application/json', ...headers } });
  const cases = [
    [await post('/chat/completions', '{"messages": ['), 400, 'invalid_json'],
    [await post('/chat/completions', '[1, 2]'), 400, 'invalid_type'],
    [await post('/chat/completions', JSON.stringify({ messages: 'hi' })), 400, 'invalid_type'],
    [await post('/chat/completions', JSON.stringify({ messages, response_format: { type: 'xml' } })), 400, 'invalid_value'],
    [await post('/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(100 << 10) }] })), 413, 'request_too_large'],
    [await post('/nowhere', '{}'), 404, 'unknown_url'],
    [await fetch(`${server.url}/chat/completions`), 405, 'method_not_allowed'],
  ];
  for (const [res, status, code] of cases) {
    assert.equal(res.status, status, code);
    const body = await res.json();
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
    assert.ok('type' in body.error && 'param' in body.error);
  }
  // Too many clients: two endless streams hold both places (one runs, one waits), the third gets 429.
  const acs = [new AbortController(), new AbortController()];
  const body = JSON.stringify({ messages, ...endless, stream: true });
  const running = acs.map((ac) => post('/chat/completions', body, {}, ac.signal).catch(() => null));
  await running[0];
  await new Promise((res) => setTimeout(res, 200));
  const busy = await client.chat.completions.create({ model: 'any', messages, max_tokens: 2 }).then(() => null, (e) => e);
  assert.ok(busy instanceof OpenAI.RateLimitError, String(busy));
  assert.equal(busy.status, 429);
  assert.equal(busy.code, 'rate_limit_exceeded');
  for (const ac of acs) ac.abort();
  for (let i = 0; i < 100; ++i) {
    const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 2 }).then((x) => x, (e) => e);
    if (!(r instanceof OpenAI.RateLimitError)) { assert.equal(r.object, 'chat.completion'); break; }
    await new Promise((res) => setTimeout(res, 20));
  }
});

test('cli.mjs serve binds to 127.0.0.1 and answers', { skip: skipNoFixtures }, async () => {
  const child = spawn(process.execPath, [path.join(root, 'js/cli.mjs'), 'serve', '--model', modelFile, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; const m = /(http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const c = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
    const r = await c.chat.completions.create({ model: 'x', messages, max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  } finally {
    child.kill('SIGTERM');
  }
});
