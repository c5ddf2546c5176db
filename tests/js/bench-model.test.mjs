// The benchmark's random models (js/bench/random-model.mjs): the published shapes, a
// streamed .pth that reads back as the values drawn, loads in our runtime and gives the
// logits of the independent JS reference (tests/reference/rwkv7.mjs), finite and spread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { SHAPES, officialKeys, shapeConfig, writeRandomModel } from '../../js/bench/random-model.mjs';
import { buildFixtureModel, readPth, tensorMap } from '../../scripts/make-fixtures.mjs';
import { loadModel, runSequence } from '../reference/rwkv7.mjs';

// The published checkpoints' shapes (RWKV-x070 World / G1: w1, a1, v1, g1 widths) and
// parameter counts as their model cards give them.
const PUBLISHED = {
  '0.1B': { L: 12, C: 768, lora: [64, 64, 32, 128], params: 191e6 },
  '0.4B': { L: 24, C: 1024, lora: [64, 64, 32, 128], params: 451e6 },
  '1.5B': { L: 24, C: 2048, lora: [96, 96, 64, 256], params: 1.53e9 },
  '2.9B': { L: 32, C: 2560, lora: [96, 96, 64, 320], params: 2.95e9 },
};

test('the random models have the published shapes', () => {
  assert.deepEqual(Object.keys(SHAPES), Object.keys(PUBLISHED));
  for (const [shape, want] of Object.entries(PUBLISHED)) {
    const keys = new Map(officialKeys(shapeConfig(shape)).map((k) => [k.name, k.shape]));
    const { L, C } = want;
    assert.deepEqual(keys.get('emb.weight'), [65536, C], shape);
    assert.deepEqual(keys.get('head.weight'), [65536, C], shape);
    assert.ok(keys.has(`blocks.${L - 1}.ffn.value.weight`) && !keys.has(`blocks.${L}.ln1.weight`), `${shape}: ${L} layers`);
    assert.deepEqual(keys.get('blocks.3.ffn.key.weight'), [4 * C, C], shape);
    assert.deepEqual(keys.get('blocks.3.att.r_k'), [C / 64, 64], shape);
    assert.deepEqual(['w1', 'a1', 'v1', 'g1'].map((m) => keys.get(`blocks.3.att.${m}`)[1]), want.lora, shape);
    const params = [...keys.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    assert.ok(Math.abs(params - want.params) / want.params < 0.01, `${shape}: ${params} parameters`);
  }
});

// A tiny model of the same rules (head size 64, LoRAs, V large enough to have a spread).
const TINY = { name: 'tiny', seed: 0x0b0b0b01, L: 2, C: 128, N: 64, F: 512, V: 512, Dw: 32, Da: 32, Dv: 32, Dg: 64, block0V: true };

test('a streamed random model reads back as drawn, loads, and gives the reference logits', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rwkv-bench-model-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tiny.pth');
  const { bytes } = writeRandomModel(file, TINY);
  assert.equal(statSync(file).size, bytes);

  // The values written are the fixture builder's, rounded to bf16.
  const { tensors } = buildFixtureModel({ ...TINY, dtype: 'bf16' });
  const back = readPth(readFileSync(file));
  assert.equal(back.size, tensors.length);
  for (const { name, shape, data } of tensors) {
    const r = back.get(name);
    assert.deepEqual(r.shape, shape, name);
    assert.equal(r.dtype, 'BF16', name);
    assert.ok(r.data.every((v, i) => v === data[i]), `${name} differs`);
  }

  const tokens = [1, 77, 300, 5, 511, 0, 42, 42, 9];
  const ref = runSequence(loadModel(tensorMap(tensors)), tokens).logits;
  const model = await rwkv.load(file);
  t.after(() => model.dispose());
  const session = await model.createSession();
  const logits = await session.prefill(tokens, { all: true });
  assert.equal(logits.length, tokens.length * TINY.V);
  let maxDiff = 0;
  for (let i = 0; i < logits.length; i++) {
    assert.ok(Number.isFinite(logits[i]), `logit ${i} is ${logits[i]}`);
    maxDiff = Math.max(maxDiff, Math.abs(logits[i] - ref[i]));
  }
  assert.ok(maxDiff < 1e-3, `max |ours - reference| = ${maxDiff}`);
  // Not degenerate: the logits spread, and no token takes all the probability.
  const last = Array.from(logits.subarray(logits.length - TINY.V));
  const mean = last.reduce((a, b) => a + b, 0) / last.length;
  const sd = Math.sqrt(last.reduce((a, b) => a + (b - mean) ** 2, 0) / last.length);
  const top = Math.max(...last);
  const pTop = 1 / last.reduce((a, b) => a + Math.exp(b - top), 0);
  assert.ok(sd > 0.1 && sd < 20, `logit spread ${sd}`);
  assert.ok(pTop < 0.9, `top token probability ${pTop}`);
});
