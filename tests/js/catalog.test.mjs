// The published models (js/catalog.mjs) and planShapes: what a model of a shape takes in
// each precision, without a file, must be what loading a file of that shape takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { G1_MODELS, SHAPES, WORLD_VOCAB_URL, findModel, shapeDims } from '../../js/catalog.mjs';
import { shapeConfig, writeRandomModel } from '../../js/bench/random-model.mjs';

test('the catalog: every G1 model has a published shape, a Hugging Face URL ending in its file name, a size', () => {
  assert.deepEqual(G1_MODELS.map((m) => m.shape), Object.keys(SHAPES));
  for (const m of G1_MODELS) {
    assert.ok(m.url.startsWith('https://huggingface.co/BlinkDL/rwkv7-g1/resolve/main/') && m.url.endsWith(`/${m.file}`), m.url);
    assert.match(m.file, /^rwkv7-g1a?-[0-9.]+b-\d{8}-ctx\d+\.pth$/);
    assert.equal(m.file.match(/-([0-9.]+b)-/)[1], m.shape.toLowerCase());
    // bf16: two bytes a parameter, within the published files' few MB of pickle and zip.
    const params = paramsOf(m.shape);
    assert.ok(Math.abs(m.bytes - 2 * params) / m.bytes < 0.01, `${m.id}: ${m.bytes} bytes for ${params} parameters`);
    assert.equal(findModel(m.id), m);
    assert.equal(findModel(m.file), m);
  }
  assert.match(WORLD_VOCAB_URL, /rwkv_vocab_v20230424\.txt$/);
});

// Parameters of a published shape, counted from the dimensions alone.
function paramsOf(shape) {
  const { nLayer: L, nEmbd: C, ffnSize: F, vocabSize: V, loraW, loraA, loraV, loraG } = shapeDims(shape);
  const perLayer = 4 * C * C + 2 * C * F + 2 * C * (loraW + loraA + loraV + loraG) + 20 * C;
  return 2 * V * C + L * perLayer;
}

test('shapeDims gives the dimensions the random model of that shape has', () => {
  for (const shape of Object.keys(SHAPES)) {
    const c = shapeConfig(shape);
    assert.deepEqual(shapeDims(shape), {
      nLayer: c.L, nEmbd: c.C, headSize: c.N, ffnSize: c.F, vocabSize: c.V, loraW: c.Dw, loraA: c.Da, loraV: c.Dv, loraG: c.Dg,
    });
  }
});

test('planShapes: the bytes of each precision are those a loaded model of that shape takes; auto picks by the budget', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rwkv-plan-'));
  try {
    const cfg = { name: 'plan', seed: 7, L: 2, C: 128, N: 64, F: 512, V: 16384, Dw: 32, Da: 32, Dv: 32, Dg: 64, block0V: true };
    const file = path.join(dir, 'plan.pth');
    writeRandomModel(file, cfg);
    const dims = { nLayer: 2, nEmbd: 128, headSize: 64, ffnSize: 512, vocabSize: 16384, loraW: 32, loraA: 32, loraV: 32, loraG: 64 };
    const [plan] = await rwkv.planShapes([dims], { worker: false });
    for (const [quant, type] of [['bf16', 'BF16'], ['int8', 'Q8_0'], ['q4', 'Q4_0']]) {
      const model = await rwkv.load(file, { quant, worker: false, threads: 1 });
      try {
        assert.equal(plan.bytes[type], model.config.memoryBytes, `${quant}: planned ${plan.bytes[type]}, loaded ${model.config.memoryBytes}`);
      } finally {
        await model.dispose();
      }
    }
    assert.ok(plan.bytes.BF16 > plan.bytes.Q8_0 && plan.bytes.Q8_0 > plan.bytes.Q4_0);
    assert.equal(plan.auto, 'BF16');
    const tight = await rwkv.planShapes([dims, dims, dims], { worker: false, memoryBudget: plan.bytes.Q8_0 });
    assert.equal(tight[0].auto, 'Q8_0');
    const none = await rwkv.planShapes([dims], { worker: false, memoryBudget: plan.bytes.Q4_0 - 1 });
    assert.equal(none[0].auto, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('planShapes: the published G1 models under the default budget (a wasm32 heap): 2.9B fits as int8, not as bf16', async () => {
  const plans = await rwkv.planShapes(G1_MODELS.map((m) => shapeDims(m.shape)), { worker: false });
  const by = Object.fromEntries(G1_MODELS.map((m, i) => [m.shape, plans[i]]));
  assert.equal(by['0.1B'].auto, 'BF16');
  assert.equal(by['1.5B'].auto, 'BF16');
  assert.equal(by['2.9B'].auto, 'Q8_0');
  assert.ok(by['2.9B'].bytes.BF16 > 2 ** 32 && by['2.9B'].bytes.Q8_0 < 3.5 * 2 ** 30, JSON.stringify(by['2.9B'].bytes));
  await assert.rejects(rwkv.planShapes([{ ...shapeDims('0.1B'), headSize: 60 }], { worker: false }), /multiple of headSize/);
});
