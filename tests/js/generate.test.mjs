// Generation through the library: seeds, stop conditions, abort, state consistency,
// save/restore equivalence, constant memory, bad inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { fixtureDir, referenceDir, skipNoFixtures, skipNoReference } from './helpers.mjs';

const modelFile = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const vocabFile = path.join(fixtureDir, 'fix-vocab-300.txt');
const loadFixture = () => rwkv.load(modelFile, { vocab: vocabFile });
const opts = { maxTokens: 40, temperature: 1.0, topP: 0.9, seed: 42 };

async function collect(gen) {
  const pieces = [];
  for await (const p of gen) pieces.push(p);
  return { pieces, summary: await gen.result };
}

test('the same seed gives the same text; another seed another text', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const texts = [];
  for (const seed of [42, 42, 7]) {
    const s = await model.createSession();
    const { pieces, summary } = await collect(s.generate('User: hello world', { ...opts, seed }));
    assert.equal(pieces.join(''), summary.text);
    assert.ok(summary.tokens <= 40);
    assert.ok(summary.stopReason === 'max_tokens' || summary.stopReason === 'end_of_text');
    assert.ok(summary.promptTokens > 0 && summary.tokensPerSecond > 0);
    texts.push(summary.text);
  }
  assert.equal(texts[0], texts[1]);
  assert.notEqual(texts[0], texts[2]);
  await model.dispose();
});

test('stop strings end generation and are not emitted; max tokens 0 gives nothing', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const s = await model.createSession();
  const free = await s.generate('User: hello world', { ...opts, maxTokens: 60 }).text();
  // Take a piece of the free-running text as a stop string (printable ASCII: the random
  // model also emits bytes that are not UTF-8): the same run must stop right before it.
  const at = free.slice(8).search(/[\x20-\x7e]{3}/) + 8;
  assert.ok(at >= 8, `no ASCII run in ${JSON.stringify(free)}`);
  const stop = free.slice(at, at + 3);
  const t = await model.createSession();
  const { summary } = await collect(t.generate('User: hello world', { ...opts, maxTokens: 60, stop: [stop] }));
  assert.equal(summary.stopReason, 'stop');
  assert.equal(summary.text, free.slice(0, free.indexOf(stop)));
  const u = await model.createSession();
  const none = await u.generate('User: hello world', { ...opts, maxTokens: 0 }).result;
  assert.equal(none.text, '');
  assert.equal(none.tokens, 0);
  await model.dispose();
});

test('abort stops within a token and leaves the state consistent with the text', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const a = await model.createSession();
  const ac = new AbortController();
  const gen = a.generate('User: hello world', { ...opts, maxTokens: 100000, bannedTokens: [0], signal: ac.signal });
  let got = '';
  await assert.rejects((async () => {
    for await (const p of gen) {
      got += p;
      if (got.length > 30) ac.abort();
    }
  })(), (err) => err.name === 'AbortError' && err instanceof rwkv.AbortError);
  const summary = await gen.result;
  assert.equal(summary.stopReason, 'aborted');
  assert.equal(summary.text, got);
  assert.ok(summary.tokens < 100);
  // The same seed for exactly that many tokens gives the same text and the same state.
  const b = await model.createSession();
  const again = await b.generate('User: hello world', { ...opts, maxTokens: summary.tokens, bannedTokens: [0] }).result;
  assert.equal(again.text, got);
  assert.deepEqual(await a.saveState(), await b.saveState());
  await model.dispose();
});

test('a restored state generates exactly what the original would have', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const a = await model.createSession();
  await a.generate('User: hello', { ...opts, maxTokens: 10 }).result;
  const saved = await a.saveState();
  const fork = await a.fork();
  const next = await a.generate('\n\nUser: and then', { ...opts, seed: 9 }).text();
  const b = await model.createSession();
  await b.restoreState(saved);
  assert.equal(await b.generate('\n\nUser: and then', { ...opts, seed: 9 }).text(), next);
  assert.equal(await fork.generate('\n\nUser: and then', { ...opts, seed: 9 }).text(), next);
  await model.dispose();
});

test('bad generation inputs give typed errors and leave the session usable', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const s = await model.createSession();
  const bad = [
    [{ temperature: -1 }, /temperature/], [{ topP: 1.5 }, /top_p/], [{ topP: NaN }, /top_p/],
    [{ maxTokens: -1 }, /max/], [{ stop: [''] }, /stop/], [{ stopTokens: [300] }, /out of range/],
    [{ bannedTokens: [-2] }, /banned|out of range/],
  ];
  for (const [o, pattern] of bad)
    await assert.rejects(s.generate('hi', { ...opts, ...o }).result, (err) => err instanceof rwkv.InvalidArgumentError && pattern.test(err.message), JSON.stringify(o));
  await assert.rejects(s.generate('', opts).result, (err) => err instanceof rwkv.InvalidArgumentError && /empty/.test(err.message));
  await assert.rejects(s.generate([1, 999], opts).result, /out of range/);
  // Calling a session while it generates.
  const ac = new AbortController();
  const long = s.generate('hi', { ...opts, maxTokens: 100000, bannedTokens: [0], signal: ac.signal });
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(s.step(1), rwkv.BusyError);
  ac.abort();
  assert.equal((await long.result).stopReason, 'aborted');
  assert.equal((await s.generate('hi', { ...opts, maxTokens: 3 }).result).tokens, 3);
  await model.dispose();
});

test('memory stays flat over 20,000 generated tokens', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const s = await model.createSession();
  await s.generate('hi', { ...opts, maxTokens: 200 }).result;  // warm up
  const before = await model.memory();
  const rssBefore = process.memoryUsage().rss;
  const r = await s.generate('hi', { ...opts, maxTokens: 20000, bannedTokens: [0], temperature: 1, topP: 1 }).result;
  const after = await model.memory();
  const rssAfter = process.memoryUsage().rss;
  assert.ok(r.tokens > 1000, `generated ${r.tokens}`);
  assert.equal(after.wasmHeapBytes, before.wasmHeapBytes);
  assert.ok(rssAfter - rssBefore < 64 * 2 ** 20, `rss grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MB`);
  console.log(`# 20k tokens: ${r.tokens} generated (${r.stopReason}), wasm heap ${before.wasmHeapBytes} -> ${after.wasmHeapBytes} bytes, rss ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MB`);
  await model.dispose();
});

test('the tiny trained model continues English text; tokenizer matches the official vectors', { skip: skipNoReference }, async () => {
  const { readFileSync } = await import('node:fs');
  const model = await rwkv.load(path.join(referenceDir, 'models/tiny-rwkv-7v0-834K.fp32.pth'));
  assert.ok(model.hasVocab, 'V = 256 models are byte-level');
  const s = await model.createSession();
  const greedy = await s.generate('The quick brown fox', { maxTokens: 12, temperature: 0 }).text();
  assert.match(greedy, /^[ a-z]+$/);  // greedy continuation stays in lowercase English letters
  await model.dispose();
  const world = await rwkv.load(path.join(referenceDir, 'models/rand-L2-D128-V65536.pth'),
    { vocab: path.join(referenceDir, 'vocab/rwkv_vocab_v20230424.txt') });
  for (const { text, ids } of JSON.parse(readFileSync(path.join(referenceDir, 'golden/tokenizer.json'), 'utf8'))) {
    assert.deepEqual(await world.tokenize(text), ids, text);
    assert.equal(await world.detokenize(ids), text);
  }
  await world.dispose();
});

test('abort during a long prefill restores the state; during generation-prefill too', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const s = await model.createSession();
  await s.prefill([1, 2, 3]);
  const before = await s.saveState();
  const long = Array.from({ length: 20000 }, (_, i) => 1 + (i * 7) % 299);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 30);
  await assert.rejects(s.prefill(long, { signal: ac.signal }), (err) => err.name === 'AbortError');
  assert.deepEqual(await s.saveState(), before);
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 30);
  const r = await s.generate(long, { ...opts, signal: ac2.signal }).result;
  assert.equal(r.stopReason, 'aborted');
  assert.equal(r.tokens, 0);
  assert.deepEqual(await s.saveState(), before);
  await model.dispose();
});

test('a crashed worker is replaced: the model works again, old sessions say what happened', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const old = await model.createSession();
  const want = await (await model.createSession()).step(5);
  await assert.rejects(model.call('crash'), rwkv.WorkerCrashedError);
  await assert.rejects(old.step(5), (err) => err instanceof rwkv.WorkerCrashedError && /create a new session/.test(err.message));
  const fresh = await model.createSession();
  assert.deepEqual(await fresh.step(5), want);
  await model.dispose();
});

test('50 sessions over one model cost 50 states and nothing of the weights', { skip: skipNoFixtures }, async () => {
  const model = await loadFixture();
  const first = await model.createSession();
  await first.generate('warm up', { maxTokens: 3 }).result;
  const before = await model.memory();
  const sessions = [];
  for (let i = 0; i < 50; i++) sessions.push(await model.createSession());
  await Promise.all(sessions.map((s, i) => s.step(1 + i)));
  const after = await model.memory();
  const stateBytes = 4 * model.config.stateSize;
  const perSession = (after.heapUsedBytes - before.heapUsedBytes) / 50;
  console.log(`# 50 sessions: weights ${model.config.memoryBytes} B, state ${stateBytes} B, heap in use +${after.heapUsedBytes - before.heapUsedBytes} B = ${perSession.toFixed(0)} B per session`);
  assert.ok(perSession >= stateBytes && perSession < stateBytes + 256, `${perSession} bytes per session for a ${stateBytes}-byte state`);
  for (const s of sessions) await s.dispose();
  assert.equal((await model.memory()).heapUsedBytes, before.heapUsedBytes);
  await model.dispose();
});
