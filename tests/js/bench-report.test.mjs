// The bench's report and options with made-up timings (js/bench/report.mjs, bench.mjs):
// medians of the rounds, ratios ours / peer per cell, decode against the bandwidth, the
// peer-missing path. No model is run here (npm run bench does that, outside npm test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseBenchArgs } from '../../js/bench/bench.mjs';
import { installPeers } from '../../js/bench/peers.mjs';
import { cellSummary, formatReport, median, prefillMacsPerToken, ratio } from '../../js/bench/report.mjs';
import { officialKeys, shapeConfig } from '../../js/bench/random-model.mjs';

const run = (decode, p128, p1024, extra = {}) => ({ decode_tps: decode, prefill_tps: [p128, p1024], load_s: 1, peak_memory_mb: 400, ...extra });

// Three rounds of one precision at 1 and 2 threads; wllama missing.
function fakeResults() {
  const cells = [];
  const add = (runtime, threads, runs) => cells.push({ runtime, precision: 'int8', threads, runs });
  add('ours-native', 1, [run(30, 100, 90), run(10, 300, 70), run(20, 200, 80)]); // medians 20, 200, 80
  add('llama-native', 1, [run(10, 400, 160), run(10, 400, 160), run(10, 400, 160)]);
  add('ours-node', 1, [run(15, 150, 60), run(15, 150, 60), { error: 'out of memory' }]);
  add('ours-chromium', 1, [run(12, 120, 50)]);
  add('ours-native', 2, [run(40, 300, 250)]);
  add('llama-native', 2, [run(50, 600, 500)]);
  return {
    date: '2026-12-02T00:00:00.000Z', machine: { cpu: 'Test CPU', features: ['avx2'], cores: 2, node: '20.0.0', chromium: '156' },
    loadavg: { start: 0.5, end: 1.5 }, shape: '0.1B', model: { n_layer: 12, n_embd: 768, vocab: 65536 }, rounds: 3,
    prefillLengths: [128, 1024], decodeTokens: 64, precisions: ['int8'], missing: { wllama: 'npm ci failed: offline' },
    bandwidth: { 1: [10, 20, 30], 2: [40] }, decodeWeightBytes: { int8: 200e6 }, cells, durationS: 600,
  };
}

test('medians and ratios: a cell is the median of its rounds, a ratio ours / peer of the medians', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5, NaN, null]), 5);
  assert.equal(median([]), null);
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(3, 0), null);
  assert.equal(ratio(null, 2), null);
  const r = fakeResults();
  assert.deepEqual(cellSummary(r, 'ours-native', 'int8', 1), { decode: 20, prefill: { 128: 200, 1024: 80 }, load_s: 1, peak_memory_mb: 400 });
  assert.equal(cellSummary(r, 'ours-node', 'int8', 1).decode, 15, 'a failed run does not count');
  assert.equal(cellSummary(r, 'wllama', 'int8', 1), null);
});

test('the report: one row per length and thread count, ratios against each peer, bandwidth, missing peers', () => {
  const text = formatReport(fakeResults());
  const row = (name) => text.split('\n').find((l) => l.startsWith(name))?.trim().split(/\s{2,}/);
  assert.match(text, /0\.1B shape \(L12 C768 V65536\).*Test CPU \(avx2\), 2 cores/);
  assert.match(text, /median of 3 rounds/);
  // columns: ours native, llama.cpp, ours Node, ours Chromium, then native/llama.cpp, Node/llama.cpp, Chromium/Node
  assert.deepEqual(row('prefill 128, 1t'), ['prefill 128, 1t', '200.0', '400.0', '150.0', '120.0', '0.50x', '0.38x', '0.80x']);
  assert.deepEqual(row('prefill 1024, 1t'), ['prefill 1024, 1t', '80.0', '160.0', '60.0', '50.0', '0.50x', '0.38x', '0.83x']);
  assert.deepEqual(row('decode 64, 1t'), ['decode 64, 1t', '20.0', '10.0', '15.0', '12.0', '2.00x', '1.50x', '0.80x']);
  assert.deepEqual(row('decode 64, 2t'), ['decode 64, 2t', '40.0', '50.0', '-', '-', '0.80x', '-', '-']);
  assert.ok(!/wllama\s/.test(text.split('\n').find((l) => l.includes('ours native') && l.includes('llama.cpp'))), 'no wllama column');
  // decode 20 tok/s x 200 MB = 4 GB/s of a median bandwidth of 20 GB/s
  assert.deepEqual(row('int8, 1t'), ['int8, 1t', '200.0', '20.00', '4.00 = 20%', '3.00 = 15%', '2.40 = 12%']);
  assert.match(text, /wllama: missing \(npm ci failed: offline\)/);
  assert.match(text, /ours Node, int8, 1t: out of memory/);
  assert.match(text, /took 10\.0 min/);
});

test('bench options: defaults, --quick, and typed errors for bad values', () => {
  const d = parseBenchArgs([]);
  assert.equal(d.shape, '0.1B');
  assert.equal(d.rounds, 3);
  assert.deepEqual(d.threads, [1, 2]);
  assert.deepEqual(d.precisions, ['bf16', 'int8', 'q4']);
  assert.equal(parseBenchArgs(['--quick']).rounds, 1);
  assert.equal(parseBenchArgs(['--quick', '--rounds', '2']).rounds, 2);
  assert.deepEqual([d.prefillLengths, d.decodeTokens], [[128, 1024], 64]);
  assert.deepEqual(parseBenchArgs(['--quick']).prefillLengths, [128]);
  assert.deepEqual(parseBenchArgs(['--prefill-tokens', '128', '--decode-tokens', '16']).prefillLengths, [128]);
  assert.equal(parseBenchArgs(['--decode-tokens', '16']).decodeTokens, 16);
  assert.throws(() => parseBenchArgs(['--prefill-tokens', '0']), /--prefill-tokens/);
  assert.throws(() => parseBenchArgs(['--decode-tokens', 'x']), /--decode-tokens/);
  assert.deepEqual(parseBenchArgs(['--shape', '2.9B', '--runtimes', 'ours-native,wllama']).runtimes, ['ours-native', 'wllama']);
  assert.throws(() => parseBenchArgs(['--shape', '7B']), /--shape: '7B' is not one of 0\.1B, 0\.4B, 1\.5B, 2\.9B/);
  assert.throws(() => parseBenchArgs(['--threads', '0']), /--threads/);
  assert.throws(() => parseBenchArgs(['--precisions', 'int3']), /unknown 'int3'/);
  assert.throws(() => parseBenchArgs(['--runtimes', 'llamafile']), /unknown 'llamafile'/);
  assert.throws(() => parseBenchArgs(['--rounds', '0']), /--rounds/);
});

test('a peer that cannot be installed is reported missing with the reason', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rwkv-bench-peers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'package.json'), '{"private": true}');
  writeFileSync(path.join(dir, 'package-lock.json'), '{}');
  const why = installPeers({ dir, npm: 'false' }); // an npm that always fails
  assert.match(why, /^npm ci --prefix js\/bench\/peers failed/);
  const r = fakeResults();
  r.missing['llama-native'] = why;
  const text = formatReport(r);
  assert.match(text, /llama\.cpp: missing \(npm ci --prefix js\/bench\/peers failed/);
  assert.ok(!text.includes('native/llama.cpp'), 'no ratio against a missing peer');
  // --runtimes: only the runtimes asked for get columns.
  const only = formatReport({ ...fakeResults(), runtimes: ['ours-native', 'llama-native'] });
  const head = only.split('\n').find((l) => l.includes('ours native') && l.includes('llama.cpp'));
  assert.ok(head.includes('native/llama.cpp') && !head.includes('ours Node') && !head.includes('Chromium'), head);
});

test('prefill GMAC/s: the multiply-adds per token are those of the checkpoint\'s matrices', () => {
  // Counted from the official key list: every 2-D weight but the embedding (a lookup),
  // the head once per prompt, layer 0's value LoRA unused (it has no v_first to mix).
  for (const shape of ['0.1B', '1.5B']) {
    const cfg = shapeConfig(shape);
    let body = 0, head = 0;
    for (const { name, shape: dims } of officialKeys(cfg)) {
      if (dims.length !== 2 || name === 'emb.weight' || /\.r_k$/.test(name) || /^blocks\.0\.att\.v[12]$/.test(name)) continue;
      if (name === 'head.weight') head = dims[0] * dims[1];
      else body += dims[0] * dims[1];
    }
    const model = { n_layer: cfg.L, n_embd: cfg.C, vocab: cfg.V, ffn: cfg.F, lora: { w: cfg.Dw, a: cfg.Da, v: cfg.Dv, g: cfg.Dg } };
    assert.equal(prefillMacsPerToken(model, 128), body + head / 128, shape);
  }
  assert.equal(prefillMacsPerToken({ n_layer: 12, n_embd: 768, vocab: 65536 }, 128), null, 'no FFN/LoRA sizes: no figure');
  // 200 tok/s of prefill 1024 at the 0.1B shape's multiply-adds
  const r = fakeResults();
  r.model = { ...r.model, ffn: 3072, lora: { w: 64, a: 64, v: 32, g: 128 } };
  const macs = prefillMacsPerToken(r.model, 1024);
  const text = formatReport(r);
  assert.match(text, /prefill 1024: GMAC\/s/);
  const row = text.split('\n').slice(text.split('\n').findIndex((l) => l.startsWith('prefill 1024: GMAC'))).find((l) => l.startsWith('int8, 1t'));
  assert.deepEqual(row.trim().split(/\s{2,}/).slice(0, 3), ['int8, 1t', (80 * macs / 1e9).toFixed(2), (160 * macs / 1e9).toFixed(2)]);
});
