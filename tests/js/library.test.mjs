// The JS library (js/rwkv.mjs) end to end in Node: sources, progress, abort, caching,
// logits against golden runs, sessions and their states, typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { startServer } from './http-server.mjs';
import { fixtureDir, referenceDir, skipNoFixtures, skipNoReference, readF32, maxAbsDiff } from './helpers.mjs';

const modelFile = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const golden = () => JSON.parse(readFileSync(path.join(fixtureDir, 'fix-L3-C64-H2.seq40.json'), 'utf8'));
const cacheDir = mkdtempSync(path.join(tmpdir(), 'rwkv-cache-'));
let server;

before(async () => { server = await startServer(fixtureDir); });
after(async () => { await server.close(); });

async function expectLogits(model) {
  const g = golden();
  const want = readF32(path.join(fixtureDir, 'fix-L3-C64-H2.seq40.logits.f32'));
  const V = model.config.vocabSize;
  const s = await model.createSession();
  const steps = [];
  for (const t of g.tokens) steps.push(...(await s.step(t)));
  assert.ok(maxAbsDiff(Float32Array.from(steps), want) <= 5e-4);
  const p = await model.createSession();
  const last = await p.prefill(g.tokens);
  assert.ok(maxAbsDiff(last, want.subarray(want.length - V)) <= 5e-4);
}

test('loads from a path, bytes, a Blob and a URL, and matches the golden run', { skip: skipNoFixtures }, async () => {
  const bytes = readFileSync(modelFile);
  const sources = [
    modelFile,
    new Uint8Array(bytes),
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    new Blob([bytes]),
    `${server.base}/fix-L3-C64-H2.pth`,
  ];
  for (const source of sources) {
    const model = await rwkv.load(source, { cache: false });
    assert.equal(model.config.nLayer, 3);
    assert.equal(model.config.dtype, 'BF16');
    await expectLogits(model);
    await model.dispose();
  }
});

// What is kept is the model as loaded (a .rwkv image under models/: js/model-cache.mjs).
test('reports progress and caches a finished download, never a partial one', { skip: skipNoFixtures }, async () => {
  // The server sends part of the file and stalls: the abort comes mid-download, however
  // slow the machine.
  const url = `${server.base}/fix-L3-C64-H2.pth`;
  const events = [];
  const ac = new AbortController();
  await assert.rejects(rwkv.load(`${url}?stall=100000`, {
    cacheDir, signal: ac.signal,
    onProgress: (p) => { events.push(p); if (p.loaded > 0) ac.abort(); },
  }), (err) => err.name === 'AbortError');
  assert.ok(events.length > 0);
  assert.deepEqual(readdirSync(cacheDir), [], 'an aborted download leaves nothing in the cache');

  const size = readFileSync(modelFile).length;
  const progress = [];
  const m1 = await rwkv.load(url, { cacheDir, onProgress: (p) => progress.push(p) });
  await m1.dispose();
  const last = progress.at(-1);
  assert.equal(last.loaded, size);
  assert.equal(last.total, size);
  assert.equal(last.fraction, 1);
  assert.ok(progress.every((p, i) => i === 0 || p.loaded >= progress[i - 1].loaded));
  assert.deepEqual(readdirSync(cacheDir), ['models']);
  assert.equal(readdirSync(path.join(cacheDir, 'models')).filter((f) => f.endsWith('.rwkv')).length, 1);
  const before = server.counts.get('/fix-L3-C64-H2.pth');
  const cachedProgress = [];
  const m2 = await rwkv.load(url, { cacheDir, onProgress: (p) => cachedProgress.push(p) });
  assert.equal(server.counts.get('/fix-L3-C64-H2.pth'), before, 'second load comes from the cache');
  assert.ok(cachedProgress.at(-1).cached);
  assert.equal(m2.name, 'fix-L3-C64-H2.pth');
  await expectLogits(m2);
  await m2.dispose();
  await rwkv.clearCache({ cacheDir });
  assert.ok(!existsSync(cacheDir) || readdirSync(cacheDir).length === 0);
});

test('sessions are independent; fork, save and restore reproduce the same logits', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(modelFile);
  const a = await model.createSession();
  const b = await model.createSession();
  await a.prefill([1, 2, 3, 4]);
  const fork = await a.fork();
  const saved = await a.saveState();
  assert.equal(saved.byteLength, 32 + 4 * model.config.stateSize);
  const la = await a.step(7);
  const lf = await fork.step(7);
  assert.deepEqual(la, lf);
  const lb = await b.step(7);  // b never saw the prefix
  assert.ok(maxAbsDiff(la, lb) > 1e-3);
  await b.restoreState(saved);
  assert.deepEqual(await b.step(7), la);
  await a.reset();
  assert.deepEqual(await a.step(7), lb);
  await model.dispose();
});

test('a state from another model shape is refused', { skip: skipNoFixtures }, async () => {
  const small = await rwkv.load(path.join(fixtureDir, 'fix-L2-C64-H1.fp16.pth'));
  const big = await rwkv.load(modelFile);
  const saved = await (await small.createSession()).saveState();
  const s = await big.createSession();
  await assert.rejects(s.restoreState(saved), (err) => err instanceof rwkv.InvalidArgumentError && /2 layers/.test(err.message));
  await assert.rejects(s.restoreState(new Uint8Array(10)), rwkv.InvalidArgumentError);
  const corrupt = saved.slice();
  corrupt[0] = 0;
  await assert.rejects(s.restoreState(corrupt), /not a saved rwkv-web state/);
  await small.dispose();
  await big.dispose();
});

test('errors are typed and the worker stays usable', { skip: skipNoFixtures }, async () => {
  await assert.rejects(rwkv.load(path.join(fixtureDir, 'bad-shape.pth')),
    (err) => err instanceof rwkv.ModelFormatError && /blocks\.2\.ffn\.value\.weight/.test(err.message));
  await assert.rejects(rwkv.load(path.join(fixtureDir, 'bad-truncated.pth')), rwkv.ModelFormatError);
  await assert.rejects(rwkv.load(path.join(fixtureDir, 'no-such-file.pth')), rwkv.LoadError);
  await assert.rejects(rwkv.load(`${server.base}/fix-L3-C64-H2.pth?status=404`, { cache: false }),
    (err) => err instanceof rwkv.LoadError && /404/.test(err.message));
  const model = await rwkv.load(modelFile);
  const s = await model.createSession();
  await assert.rejects(s.step(300), (err) => err instanceof rwkv.InvalidArgumentError && /out of range/.test(err.message));
  await assert.rejects(s.prefill([1, -1]), rwkv.InvalidArgumentError);
  await assert.rejects(model.tokenize('hi'), rwkv.VocabError);  // V = 300 and no vocabulary given
  assert.equal((await s.step(1)).length, 300);  // still usable
  await model.dispose();
});

test('a state-tuning file becomes the session state, laid out [head][value][key]', { skip: skipNoFixtures }, async () => {
  const { readPth } = await import('../../scripts/make-fixtures.mjs');
  const file = path.join(fixtureDir, 'fix-L3-C64-H2.state.pth');
  const tensors = readPth(readFileSync(file));
  const model = await rwkv.load(modelFile);
  const c = model.config;
  const s = await model.createSession();
  await s.step(5);
  await s.loadStateFile(file);
  const saved = await s.saveState();
  const floats = new Float32Array(saved.buffer, saved.byteOffset + 32, c.stateSize);
  const layer = 2 * c.nEmbd + c.nHead * c.headSize * c.headSize;
  for (let i = 0; i < c.nLayer; i++) {
    const want = tensors.get(`blocks.${i}.att.time_state`).data;
    assert.deepEqual(floats.subarray(i * layer + c.nEmbd, i * layer + c.nEmbd + want.length), want);
    assert.ok(floats.subarray(i * layer, i * layer + c.nEmbd).every((v) => v === 0));
  }
  const first = await s.step(7);
  await s.step(8);
  await s.reset();  // back to the loaded state, not to zeros
  assert.deepEqual(await s.step(7), first);
  await assert.rejects(s.loadStateFile(path.join(fixtureDir, 'fix-L2-C64-H1.fp16.pth')),
    (err) => err instanceof rwkv.ModelFormatError && /time_state/.test(err.message));
  await model.dispose();
});
