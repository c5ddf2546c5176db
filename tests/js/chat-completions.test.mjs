// The chat layer on a model (js/chat/completions.mjs): OpenAI's request and response shapes,
// structured output validated by ajv, the prefix-state cache against runs without it,
// session.score against the plain-JS reference, typed request errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import * as rwkv from '../../js/rwkv.mjs';
import { chatPrompt } from '../../js/chat/template.mjs';
import { promptSegments } from '../../js/chat/completions.mjs';
import { loadModel, runSequence } from '../reference/rwkv7.mjs';
import { FIXTURES, buildFixtureModel, tensorMap } from '../../scripts/make-fixtures.mjs';
import { fixtureDir, skipNoFixtures } from './helpers.mjs';

const modelFile = path.join(fixtureDir, 'fix-L3-C64-H2.rwkv');  // with the 300-token vocabulary
const cacheDir = mkdtempSync(path.join(tmpdir(), 'rwkv-chat-'));
let model, plain;

before(async () => {
  if (skipNoFixtures) return;
  model = await rwkv.load(modelFile, { cacheDir });
  plain = await rwkv.load(modelFile, { stateCache: 0 });
});
after(async () => { await model?.dispose(); await plain?.dispose(); });

// Tokens of a prompt up to its last segment (the final "Assistant:" turn), tokenized by
// segments as the chat layer feeds them.
async function tokensBeforeReply(m, prompt) {
  const segments = promptSegments(prompt, 'g1');
  assert.equal(segments.at(-1), 'Assistant:');
  return (await Promise.all(segments.slice(0, -1).map((s) => m.tokenize(s)))).flat().length;
}

const greedy = { temperature: 0, max_tokens: 12 };
const history = [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'hello the world' }];

test('a chat completion has OpenAI\'s shape, and its prompt is the template\'s', { skip: skipNoFixtures }, async () => {
  const r = await model.chat.completions.create({ messages: history, ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, 'fix-L3-C64-H2.rwkv');
  assert.equal(r.choices.length, 1);
  const [c] = r.choices;
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  const { prompt } = chatPrompt(history);
  // The whole prompt tokenized at once differs at most at the turn boundaries: same length here.
  assert.equal(r.usage.prompt_tokens, (await model.tokenize(prompt)).length);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.completion_tokens <= 12);
});

test('streamed chunks add up to the same completion; the last chunk has the usage', { skip: skipNoFixtures }, async () => {
  const req = { messages: [{ role: 'user', content: 'aa in the' }], seed: 7, max_tokens: 16 };
  const whole = await plain.chat.completions.create(req);
  const chunks = [];
  for await (const ch of await plain.chat.completions.create({ ...req, stream: true })) chunks.push(ch);
  assert.ok(chunks.every((ch) => ch.object === 'chat.completion.chunk' && ch.id === chunks[0].id));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const text = chunks.map((ch) => ch.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content);
  const finish = chunks.at(-2).choices[0];
  assert.equal(finish.finish_reason, whole.choices[0].finish_reason);
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, whole.usage);
  const noUsage = [];
  for await (const ch of await plain.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: false } })) noUsage.push(ch);
  assert.equal(noUsage.length, chunks.length - 1);
});

test('the state cache: a follow-up feeds only what is new and gives what a model without the cache gives', { skip: skipNoFixtures }, async () => {
  const messages = [{ role: 'system', content: 'You are here.' }];
  let lastPrompt = null;
  for (let turn = 0; turn < 4; ++turn) {
    messages.push({ role: 'user', content: `question ${turn} in the world` });
    const req = { messages, ...greedy };
    const [a, b] = [await model.chat.completions.create(req), await plain.chat.completions.create(req)];
    assert.equal(a.choices[0].message.content, b.choices[0].message.content, `turn ${turn}: the cached state gives other text`);
    assert.equal(b.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
    if (lastPrompt) {
      // Cached: the previous prompt up to its final "Assistant:" turn.
      assert.equal(a.usage.prompt_tokens_details.cached_tokens, await tokensBeforeReply(model, lastPrompt), `turn ${turn}`);
    }
    lastPrompt = chatPrompt(messages).prompt;
    messages.push({ role: 'assistant', content: a.choices[0].message.content });
  }
  // A changed history falls back to the longest cached prefix: the system turn and the first exchange.
  const changed = [...messages.slice(0, 3), { role: 'user', content: 'something else' }];
  const r = await model.chat.completions.create({ messages: changed, ...greedy });
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, await tokensBeforeReply(model, chatPrompt(messages.slice(0, 2)).prompt));
  assert.equal(r.choices[0].message.content, (await plain.chat.completions.create({ messages: changed, ...greedy })).choices[0].message.content);
});

test('after a reply whose tokens are those of its text, the next turn feeds only the new turn', { skip: skipNoFixtures }, async () => {
  // A grammar makes the reply " bcf" and its end of turn; with the single "\n" (token 11)
  // banned, the only tokens that write it are the ones the text is tokenized to.
  const forced = { grammar: 'root ::= " bcf\\n\\n"', bannedTokens: [0, 11], max_tokens: 10 };
  const messages = [{ role: 'user', content: 'first question' }];
  const first = await model.chat.completions.create({ messages, ...forced });
  assert.equal(first.choices[0].message.content, 'bcf');
  assert.equal(first.choices[0].finish_reason, 'stop');
  messages.push(first.choices[0].message, { role: 'user', content: 'second question' });
  const r = await model.chat.completions.create({ messages, ...greedy });
  const segments = promptSegments(chatPrompt(messages).prompt, 'g1');
  assert.deepEqual(segments.slice(-4), ['Assistant:', ' bcf\n\n', 'User: second question\n\n', 'Assistant:']);
  const through = (await Promise.all(segments.slice(0, -2).map((s) => model.tokenize(s)))).flat().length;
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, through, 'the state after the reply was used');
  const want = await plain.chat.completions.create({ messages, ...greedy });
  assert.equal(r.choices[0].message.content, want.choices[0].message.content);
  // A reply that is not its text's tokenization is not kept: the next turn starts before it.
  const loose = await model.chat.completions.create({ messages: messages.slice(0, 1), seed: 3, max_tokens: 6 });
  const next = [...messages.slice(0, 1), loose.choices[0].message, { role: 'user', content: 'again' }];
  const r2 = await model.chat.completions.create({ messages: next, ...greedy });
  assert.ok(r2.usage.prompt_tokens_details.cached_tokens <= await tokensBeforeReply(model, chatPrompt(messages.slice(0, 1)).prompt));
});

test('the states are kept in the cache folder and used by the next model', { skip: skipNoFixtures }, async () => {
  const messages = [{ role: 'user', content: 'kept on disk' }, { role: 'assistant', content: 'yes' }, { role: 'user', content: 'and now' }];
  await model.chat.completions.create({ messages: messages.slice(0, 1), ...greedy });
  const dirs = readdirSync(path.join(cacheDir, 'states'));
  assert.equal(dirs.length, 1);
  assert.ok(readdirSync(path.join(cacheDir, 'states', dirs[0])).some((f) => f.endsWith('.state')));
  const again = await rwkv.load(modelFile, { cacheDir });
  try {
    const r = await again.chat.completions.create({ messages, ...greedy });
    assert.ok(r.usage.prompt_tokens_details.cached_tokens > 0);
    const want = await plain.chat.completions.create({ messages, ...greedy });
    assert.equal(r.choices[0].message.content, want.choices[0].message.content);
  } finally {
    await again.dispose();
  }
});

test('response_format json_object and json_schema give documents that parse and validate', { skip: skipNoFixtures }, async () => {
  const ajv = new Ajv();
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer', minimum: 0, maximum: 120 }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 } },
    required: ['name', 'age'], additionalProperties: false,
  };
  for (const seed of [1, 2, 3]) {
    const obj = await model.chat.completions.create({ messages: history, seed, max_tokens: 120, response_format: { type: 'json_object' } });
    assert.equal(typeof JSON.parse(obj.choices[0].message.content), 'object');
    const r = await model.chat.completions.create({
      messages: history, seed, max_tokens: 200, response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const doc = JSON.parse(r.choices[0].message.content);
    assert.ok(ajv.validate(schema, doc), `seed ${seed}: ${r.choices[0].message.content}: ${ajv.errorsText()}`);
  }
});

test('requests OpenAI would refuse are InvalidRequestError with OpenAI\'s error object', { skip: skipNoFixtures }, async () => {
  const cases = [
    [{ messages: history, temperature: 'hot' }, 'temperature', 'invalid_type'],
    [{ messages: history, top_p: 2 }, 'top_p', 'invalid_value'],
    [{ messages: history, max_tokens: -1 }, 'max_tokens', 'invalid_value'],
    [{ messages: history, frobnicate: true }, 'frobnicate', 'unknown_parameter'],
    [{ messages: history, n: 2 }, 'n', 'unsupported_value'],
    [{ messages: [] }, 'messages', 'invalid_type'],
    [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0]', 'invalid_value'],
    [{ messages: history, response_format: { type: 'json_schema', json_schema: { schema: { type: 'string', pattern: 'a+' } } } }, 'response_format', 'invalid_value'],
    [{ messages: history, response_format: { type: 'json_object' }, thinking: true }, 'thinking', 'invalid_value'],
    [{ messages: history, logit_bias: { 5: 500 } }, 'logit_bias', 'invalid_value'],
    [{ messages: history, stop: [''] }, 'stop', 'invalid_value'],
  ];
  for (const [req, param, code] of cases) {
    const err = await model.chat.completions.create(req).then(() => null, (e) => e);
    assert.ok(err instanceof rwkv.InvalidRequestError, `${JSON.stringify(req).slice(0, 80)}: ${err}`);
    assert.ok(err instanceof rwkv.InvalidArgumentError);
    assert.deepEqual(JSON.parse(JSON.stringify(err)), { message: err.message, type: 'invalid_request_error', param, code });
  }
  const err = await model.completions.create({ prompt: 5 }).then(() => null, (e) => e);
  assert.equal(err.param, 'prompt');
});

test('an abort ends a stream with AbortError and a request with it', { skip: skipNoFixtures }, async () => {
  const ac = new AbortController();
  const stream = await model.chat.completions.create({ messages: history, max_tokens: 400, logit_bias: { 11: -100, 257: -100 }, stream: true, signal: ac.signal });
  let n = 0;
  await assert.rejects(async () => {
    for await (const ch of stream) if (ch.choices[0]?.delta.content && ++n === 3) ac.abort();
  }, (e) => e.name === 'AbortError');
  const ac2 = new AbortController();
  const p = model.chat.completions.create({ messages: history, max_tokens: 400, logit_bias: { 11: -100, 257: -100 }, signal: ac2.signal });
  setTimeout(() => ac2.abort(), 20);
  await assert.rejects(p, (e) => e.name === 'AbortError');
  assert.equal((await model.memory()).sessions, 0, 'a session of an aborted request was left behind');
});

test('completions.create: a raw prompt, stream and not', { skip: skipNoFixtures }, async () => {
  const req = { prompt: 'hello the', seed: 3, max_tokens: 10 };
  const r = await plain.completions.create(req);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.usage.prompt_tokens, (await plain.tokenize('hello the')).length);
  const s = await plain.createSession();
  const direct = await s.generate('hello the', { ...rwkv.PRESETS.completion, seed: 3, maxTokens: 10 }).text();
  assert.equal(r.choices[0].text, direct);
  let text = '';
  for await (const ch of await plain.completions.create({ ...req, stream: true })) text += ch.choices[0]?.text ?? '';
  assert.equal(text, direct);
  await s.dispose();
});

test('session.score gives the log-probabilities of the plain-JS reference', { skip: skipNoFixtures }, async () => {
  const ref = loadModel(tensorMap(buildFixtureModel(FIXTURES.L3).tensors));
  const prompt = [12, 40, 7, 99];
  const candidates = [[5], [250, 3, 77], [1, 1]];
  const s = await model.createSession();
  const scores = await s.score(prompt, candidates);
  for (const [i, c] of candidates.entries()) {
    const seq = [...prompt, ...c];
    const { logits } = runSequence(ref, seq.slice(0, -1));
    let want = 0;
    for (let k = 0; k < c.length; ++k) {
      const row = logits.subarray((prompt.length - 1 + k) * ref.V, (prompt.length + k) * ref.V);
      const max = Math.max(...row);
      want += row[c[k]] - max - Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    }
    assert.ok(Math.abs(scores[i].logprob - want) < 2e-3, `candidate ${i}: ${scores[i].logprob} vs ${want}`);
    assert.equal(scores[i].tokenLogprobs.length, c.length);
  }
  // The session's own state is untouched: its next logits are those of the zero state.
  assert.deepEqual(Array.from(await s.prefill([12])).slice(0, 5), Array.from((await (await model.createSession()).prefill([12]))).slice(0, 5));
  const [text] = await s.score('hello', [' the']);
  assert.deepEqual(text.tokens, await model.tokenize(' the'));
});
