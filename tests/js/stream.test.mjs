// Streaming loads through the engine (js/engine.mjs, the wasm core's Loader): chunks of
// any size give the same model as one chunk, the heap holds the model and the loader's
// buffers but never the file, a load cut off mid-way leaves the heap as it was and the
// engine usable, and quant 'auto' picks by the memory budget, failing after the file's
// header (before the rest is read) when nothing fits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createEngine, chooseQuant } from '../../js/engine.mjs';
import { AbortError, ModelFormatError, OutOfMemoryError } from '../../js/errors.mjs';
import { fixtureDir, referenceDir, skipNoFixtures, skipNoReference } from './helpers.mjs';

const fixture = (name) => path.join(fixtureDir, name);

// A Blob-like source whose stream hands out chunks of the sizes `sizes(i)` gives, counting
// the bytes read; `cutAt` ends the stream early (a dropped download).
function chunked(bytes, sizes, { cutAt = bytes.length, onChunk = () => {} } = {}) {
  const src = { read: 0 };
  src.blob = {
    size: bytes.length,
    stream() {
      let at = 0, i = 0;
      return new ReadableStream({
        pull(controller) {
          if (at >= cutAt) return controller.close();
          const n = Math.min(sizes(i++), cutAt - at);
          controller.enqueue(bytes.slice(at, at + n));
          at += n;
          src.read = at;
          onChunk(at);
        },
      });
    },
  };
  return src;
}

function context(signal = new AbortController().signal) {
  return { signal, emit() {}, transfer() {} };
}

// The logits after a few tokens: a fingerprint of every weight.
async function fingerprint(engine, modelId) {
  const { sessionId } = engine.createSession({ modelId });
  const logits = await engine.prefill({ sessionId, tokens: [1, 2, 3, 0, 5] }, context());
  engine.deleteSession({ sessionId });
  return logits;
}

async function load(engine, source, options = {}, ctx = context()) {
  return engine.loadModel({ source, options: { threads: 1, cache: false, ...options } }, ctx);
}

test('chunks of every size give the model that one chunk gives, for each container and quant', { skip: skipNoFixtures }, async () => {
  const engine = createEngine();
  for (const name of ['fix-L3-C64-H2.pth', 'fix-L3-C64-H2.f32.safetensors', 'fix-L2-C64-H1.fp16.pth', 'fix-L3-C64-H2.rwkv']) {
    const bytes = new Uint8Array(readFileSync(fixture(name)));
    for (const quant of [undefined, 'int8', 'q4']) {
      const whole = await load(engine, { path: fixture(name) }, { quant });
      const want = await fingerprint(engine, whole.modelId);
      engine.unloadModel({ modelId: whole.modelId });
      let seed = bytes.length;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 5000 + 1;
      for (const sizes of [() => 7, () => 4099, random, ...(quant === 'int8' && name.endsWith('.pth') ? [() => 1] : [])]) {
        const m = await load(engine, chunked(bytes, sizes), { quant });
        assert.deepEqual(await fingerprint(engine, m.modelId), want, `${name} as ${quant ?? 'stored'}`);
        assert.equal(m.config.dtype, whole.config.dtype);
        engine.unloadModel({ modelId: m.modelId });
      }
    }
  }
  engine.shutdown();
});

test('the heap while loading holds the model and the loader\'s buffers, never the file', { skip: skipNoReference }, async () => {
  const file = path.join(referenceDir, 'models/rand-L2-D128-V65536.pth');  // 34 MB of bf16
  const bytes = new Uint8Array(readFileSync(file));
  const engine = createEngine();
  await engine.init({ threads: 1 });
  for (const quant of ['q4', 'int8', undefined]) {
    const base = engine.memory().heapUsedBytes;
    let peak = 0;
    // The heap in use, measured by the allocator (not the loader's own count), as chunks arrive.
    const src = chunked(bytes, () => 1 << 20, { onChunk: () => { peak = Math.max(peak, engine.memory().heapUsedBytes - base); } });
    const m = await load(engine, src, { quant });
    const { modelBytes, loadPeakBytes } = engine.memory();
    const largest = 65536 * 128 * 2;  // emb.weight as stored
    assert.ok(peak <= modelBytes + largest + (6 << 20), `${quant}: heap grew by ${peak} bytes for a ${modelBytes}-byte model`);
    assert.ok(loadPeakBytes <= modelBytes + (5 << 20), `${quant}: the loader counted ${loadPeakBytes} bytes at most`);
    if (quant === 'q4') assert.ok(peak < bytes.length / 2, `q4: heap grew by ${peak} bytes for a ${bytes.length}-byte file`);
    engine.unloadModel({ modelId: m.modelId });
  }
  engine.shutdown();
});

test('a load cut off mid-way leaves the heap as it was and the engine usable', { skip: skipNoFixtures }, async () => {
  const bytes = new Uint8Array(readFileSync(fixture('fix-L3-C64-H2.pth')));
  const engine = createEngine();
  await engine.init({ threads: 1 });
  const good = await load(engine, { path: fixture('fix-L3-C64-H2.pth') });
  const want = await fingerprint(engine, good.modelId);
  engine.unloadModel({ modelId: good.modelId });
  const base = engine.memory().heapUsedBytes;
  for (const cutAt of [100, 5000, bytes.length >> 1, bytes.length - 30]) {
    await assert.rejects(load(engine, chunked(bytes, () => 3000, { cutAt })), (err) => err instanceof ModelFormatError && /ended after/.test(err.message), `cut at ${cutAt}`);
    assert.equal(engine.memory().heapUsedBytes, base, `cut at ${cutAt}: heap in use back to ${base}`);
  }
  // An abort while the bytes arrive.
  const ac = new AbortController();
  const src = chunked(bytes, () => 2000, { onChunk: (at) => { if (at > bytes.length / 2) ac.abort(); } });
  await assert.rejects(load(engine, src, {}, context(ac.signal)), AbortError);
  assert.equal(engine.memory().heapUsedBytes, base, 'after an abort: heap in use back to its baseline');
  // A NaN in a late tensor: found as its bytes arrive.
  const damaged = bytes.slice();
  damaged.set([0xff, 0x7f], Math.floor(bytes.length * 0.7) & ~1);
  await assert.rejects(load(engine, chunked(damaged, () => 4096)), (err) => err instanceof ModelFormatError);
  assert.equal(engine.memory().heapUsedBytes, base, 'after a bad tensor: heap in use back to its baseline');
  const again = await load(engine, chunked(bytes, () => 65536));
  assert.deepEqual(await fingerprint(engine, again.modelId), want);
  engine.shutdown();
});

test('a file read straight into the heap (readInto) gives the model its chunks give; a failure or an abort there leaves the heap as it was', { skip: skipNoReference }, async () => {
  const file = path.join(referenceDir, 'models/rand-L2-D128-V65536.pth');  // 34 MB: several windows
  const bytes = new Uint8Array(readFileSync(file));
  const engine = createEngine();
  await engine.init({ threads: 1 });
  const base = engine.memory().heapUsedBytes;
  for (const quant of [undefined, 'int8']) {
    const direct = await load(engine, { path: file }, { quant });
    const want = await fingerprint(engine, direct.modelId);
    engine.unloadModel({ modelId: direct.modelId });
    const m = await load(engine, chunked(bytes, () => 1 << 20), { quant });
    assert.deepEqual(await fingerprint(engine, m.modelId), want, `as ${quant ?? 'stored'}`);
    engine.unloadModel({ modelId: m.modelId });
  }
  assert.equal(engine.memory().heapUsedBytes, base);
  const dir = mkdtempSync(path.join(tmpdir(), 'rwkv-readinto-'));
  try {
    // A NaN in a late tensor, and a file cut short: typed errors, nothing left allocated.
    const damaged = bytes.slice();
    damaged.set([0xff, 0x7f], Math.floor(bytes.length * 0.8) & ~1);
    writeFileSync(path.join(dir, 'damaged.pth'), damaged);
    writeFileSync(path.join(dir, 'cut.pth'), bytes.subarray(0, bytes.length - 1000));
    await assert.rejects(load(engine, { path: path.join(dir, 'damaged.pth') }), ModelFormatError);
    assert.equal(engine.memory().heapUsedBytes, base, 'after a bad tensor: heap in use back to its baseline');
    await assert.rejects(load(engine, { path: path.join(dir, 'cut.pth') }), ModelFormatError);
    assert.equal(engine.memory().heapUsedBytes, base, 'after a cut file: heap in use back to its baseline');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // An abort while the file is read.
  const ac = new AbortController();
  const ctx = { ...context(ac.signal), emit: (kind, e) => { if (kind === 'progress' && e.loaded > bytes.length / 3) ac.abort(); } };
  await assert.rejects(load(engine, { path: file }, {}, ctx), AbortError);
  assert.equal(engine.memory().heapUsedBytes, base, 'after an abort: heap in use back to its baseline');
  engine.shutdown();
});

test("quant 'auto' picks by the memory budget and refuses after the header when nothing fits", { skip: skipNoFixtures }, async () => {
  const bytes = new Uint8Array(readFileSync(fixture('fix-L3-C64-H2.pth')));  // bf16
  const engine = createEngine();
  await engine.init({ threads: 1 });
  const sizes = {};
  for (const quant of [undefined, 'int8', 'q4']) {
    const m = await load(engine, { path: fixture('fix-L3-C64-H2.pth') }, { quant });
    sizes[quant ?? 'stored'] = m.config.memoryBytes;
    engine.unloadModel({ modelId: m.modelId });
  }
  const pick = async (memoryBudget) => {
    const m = await load(engine, { path: fixture('fix-L3-C64-H2.pth') }, { quant: 'auto', memoryBudget });
    engine.unloadModel({ modelId: m.modelId });
    return m.config.dtype;
  };
  assert.equal(await pick(undefined), 'BF16');
  assert.equal(await pick(sizes.stored), 'BF16');
  assert.equal(await pick(sizes.stored - 1), 'Q8_0');
  assert.equal(await pick(sizes.int8 - 1), 'Q4_0');
  const src = chunked(bytes, () => 1000);
  await assert.rejects(load(engine, src, { quant: 'auto', memoryBudget: sizes.q4 - 1 }), (err) => {
    assert.ok(err instanceof OutOfMemoryError, err.stack);
    const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;
    for (const [n, as] of [[sizes.stored, 'as stored'], [sizes.int8, 'as int8'], [sizes.q4, 'as q4']]) assert.match(err.message, new RegExp(`${mb(n)} ${as}`));
    assert.match(err.message, /memory budget/);
    return true;
  });
  assert.ok(src.read < bytes.length / 4, `read ${src.read} of ${bytes.length} bytes before refusing`);
  // An explicit quant is not held to the budget, only to what a wasm32 heap can take.
  assert.throws(() => chooseQuant({ bytes: { stored: 6e9, F32: 12e9, BF16: 6e9, Q8_0: 3.2e9, Q4_0: 1.7e9 } }, 'BF16'), OutOfMemoryError);
  assert.equal(chooseQuant({ bytes: { stored: 6e9, F32: 12e9, BF16: 6e9, Q8_0: 3.2e9, Q4_0: 1.7e9 } }, ''), 'Q8_0');
  assert.equal(chooseQuant({ bytes: { stored: 6e9, F32: 12e9, BF16: 6e9, Q8_0: 3.2e9, Q4_0: 1.7e9 } }, 'auto', 2e9), 'Q4_0');
  engine.shutdown();
});
