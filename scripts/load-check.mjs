#!/usr/bin/env node
// load-check.mjs — loads one model with one quant through the library (Node, the wasm
// build) and prints what loading cost and that the model generates: load time, MB/s of
// the file, the wasm heap's size after loading (it only grows, so this is its peak), the
// loader's own peak, the model's bytes, and a few generated tokens per second.
//
//   node scripts/load-check.mjs --shape 0.1B|0.4B|1.5B|2.9B [--quant auto,int8,q4] [--tokens 16] [--threads N] [--vocab FILE]
//   node scripts/load-check.mjs --model FILE [...]
//   node scripts/load-check.mjs ... --browser     (the same in headless Chromium, the page's build)
//   node scripts/load-check.mjs ... --browser --cache   (also through the model cache, OPFS:
//                                 a first load from the local server that keeps the converted
//                                 model, then a second one that reads it back)
//   node scripts/load-check.mjs ... --warm        (a second load in the same engine, into heap
//                                 pages the first one touched; in Chromium from the file's
//                                 bytes in memory, in the page)
//
// Each line also gives freshMemoryMBps: how fast this machine hands out fresh memory (one
// write per page of a new wasm memory the model's size). Every byte of a first load lands
// in fresh pages, so this bounds a first load's MB/s (in some VMs it is only a few hundred
// MB/s); a load into pages already touched (--warm, a later load in the same worker) is not
// bounded by it.
//
// Each quant of the list loads in a fresh worker (a fresh heap), one after the other; one
// JSON line each. The vocabulary defaults to the World vocabulary of ../shared/reference.
//
// --shape writes the random model of that published shape to build/bench/ first when it
// is not there (js/bench/random-model.mjs; the 2.9B shape is a 5.9 GB file). Not part of
// npm test: the large shapes take minutes and gigabytes.
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from '../js/rwkv.mjs';
import { createEngine } from '../js/engine.mjs';
import { shapeConfig, writeRandomModel } from '../js/bench/random-model.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    shape: { type: 'string' }, model: { type: 'string' }, quant: { type: 'string', default: 'auto' },
    tokens: { type: 'string', default: '16' }, threads: { type: 'string' }, browser: { type: 'boolean' },
    cache: { type: 'boolean' }, warm: { type: 'boolean' },
    vocab: { type: 'string', default: path.join(fileURLToPath(new URL('..', import.meta.url)), '../shared/reference/vocab/rwkv_vocab_v20230424.txt') },
  },
});
const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;

let file = values.model;
if (!file) {
  if (!values.shape) throw new Error('load-check needs --shape 0.1B|0.4B|1.5B|2.9B or --model FILE');
  const cfg = shapeConfig(values.shape);
  file = path.join(root, 'build/bench', `${cfg.name}.pth`);
  if (!existsSync(file)) {
    const t0 = performance.now();
    writeRandomModel(file, cfg);
    console.log(`wrote ${file} (${mb(statSync(file).size)}) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
}
const fileBytes = statSync(file).size;

// MB/s of first writes to the pages of a fresh wasm memory of `bytes` (runs in Node or, as
// a string, in the page).
function freshMemoryMBps(bytes) {
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  mem.grow(Math.ceil(bytes / 65536));
  const heap = new Uint8Array(mem.buffer);
  const t0 = performance.now();
  for (let i = 0; i < heap.length; i += 4096) heap[i] = 1;
  return +(heap.length / 2 ** 20 / ((performance.now() - t0) / 1000)).toFixed(0);
}
if (values.browser) {
  // The bench's page (js/bench/browser.mjs): the library in a page's worker, the model
  // fetched from a local server, its heap read after loading.
  const { openBrowser } = await import('../js/bench/browser.mjs');
  const browser = await openBrowser({ root, modelsDir: path.dirname(file), log: console.error, profile: !!values.cache });
  try {
    const fresh = await browser.evaluate(`(${freshMemoryMBps})(${fileBytes})`);
    const cell = (quant, extra) => ({
      runtime: 'ours', model: path.basename(file), quant, threads: Number(values.threads ?? 1),
      decodeRuns: 1, decodeTokens: Number(values.tokens), prefillLengths: [1], prefillRuns: 0, ...extra,
    });
    for (const quant of values.quant.split(',')) {
      const loads = [['local server', {}]];
      if (values.cache) loads.push(['local server, kept in the model cache', { cache: true, clearCache: true }], ['model cache', { cache: true }]);
      if (values.warm) {
        // The engine in the page, the file's bytes already in memory, loaded twice: the
        // second load into heap pages the first touched (no I/O, no fresh memory).
        const seconds = await browser.evaluate(async ({ model, quant }) => {
          const { createEngine } = await import('/js/engine.mjs');
          const engine = createEngine();
          await engine.init({ threads: 1 });
          const ctx = { signal: new AbortController().signal, emit() {}, transfer() {} };
          const bytes = await (await fetch(`/models/${model}`)).arrayBuffer();
          const out = [];
          for (let i = 0; i < 2; i++) {
            const t = performance.now();
            const { modelId } = await engine.loadModel({ source: { bytes }, options: { quant, threads: 1, cache: false } }, ctx);
            out.push((performance.now() - t) / 1000);
            engine.unloadModel({ modelId });
          }
          engine.shutdown();
          return out;
        }, { model: path.basename(file), quant });
        console.log(JSON.stringify({
          file: path.basename(file), quant, browser: browser.version, warm: true, from: 'bytes in memory',
          firstLoadSeconds: +seconds[0].toFixed(2), firstLoadMBps: +(fileBytes / 2 ** 20 / seconds[0]).toFixed(1),
          secondLoadSeconds: +seconds[1].toFixed(2), secondLoadMBps: +(fileBytes / 2 ** 20 / seconds[1]).toFixed(1),
        }));
      }
      for (const [from, extra] of loads) {
        const r = await browser.run(cell(quant, extra));
        if (r.error) throw new Error(`${quant} in Chromium (${from}): ${r.error}`);
        // readMBps: the bytes read (the .rwkv copy, from the cache) over the time they took
        // into the heap; loadSeconds adds the rest (writing the cache's copy, the vocabulary).
        console.log(JSON.stringify({
          file: path.basename(file), fileMB: +(fileBytes / 2 ** 20).toFixed(1), quant, browser: browser.version, from, fromCache: r.from_cache,
          readMB: +r.read_mb.toFixed(1), readSeconds: +r.stream_s.toFixed(2), readMBps: +(r.read_mb / r.stream_s).toFixed(1),
          loadSeconds: +r.load_s.toFixed(2), loadMBps: +(fileBytes / 2 ** 20 / r.load_s).toFixed(1),
          heapPeakMB: +r.peak_memory_mb.toFixed(1), freshMemoryMBps: fresh, threads: Number(values.threads ?? 1), tokensPerSecond: +r.decode_tps.toFixed(2),
        }));
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(0);
}
const fresh = freshMemoryMBps(fileBytes);
for (const quant of values.quant.split(',')) {
  const t0 = performance.now();
  const model = await load(file, { quant, vocab: values.vocab, cache: false, ...(values.threads ? { threads: Number(values.threads) } : {}) });
  const loadSeconds = (performance.now() - t0) / 1000;
  const mem = await model.memory();
  const session = await model.createSession();
  const result = await session.generate([0, 510, 1000, 7], { maxTokens: Number(values.tokens), temperature: 1, seed: 1, bannedTokens: [0] }).result;
  console.log(JSON.stringify({
    file: path.basename(file), fileMB: +(fileBytes / 2 ** 20).toFixed(1), quant, dtype: model.config.dtype,
    loadSeconds: +loadSeconds.toFixed(2), loadMBps: +(fileBytes / 2 ** 20 / loadSeconds).toFixed(1), freshMemoryMBps: fresh,
    heapPeakMB: +(mem.wasmHeapBytes / 2 ** 20).toFixed(1), loaderPeakMB: +(mem.loadPeakBytes / 2 ** 20).toFixed(1),
    modelMB: +(mem.modelBytes / 2 ** 20).toFixed(1), threads: model.runtime.threads,
    tokens: result.tokens, tokensPerSecond: +result.tokensPerSecond.toFixed(2),
  }));
  await model.dispose();
  if (values.warm) {
    // The engine in this thread: two loads, the second into the heap pages of the first.
    const engine = createEngine();
    const ctx = { signal: new AbortController().signal, emit() {}, transfer() {} };
    const seconds = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      const { modelId } = await engine.loadModel({ source: { path: file }, options: { quant, cache: false, threads: Number(values.threads ?? 1) } }, ctx);
      seconds.push((performance.now() - t) / 1000);
      engine.unloadModel({ modelId });
    }
    engine.shutdown();
    console.log(JSON.stringify({
      file: path.basename(file), quant, warm: true, firstLoadSeconds: +seconds[0].toFixed(2), firstLoadMBps: +(fileBytes / 2 ** 20 / seconds[0]).toFixed(1),
      secondLoadSeconds: +seconds[1].toFixed(2), secondLoadMBps: +(fileBytes / 2 ** 20 / seconds[1]).toFixed(1),
    }));
  }
}
