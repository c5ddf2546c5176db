// The GGUF writer (js/formats/gguf-writer.mjs) read back with an independent parser
// and decoders (tests/reference/gguf-read.mjs, ggml-dequant.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeGguf, ggufConfigOf } from '../../js/formats/gguf-writer.mjs';
import { buildFixtureModel, FIXTURES } from '../../scripts/make-fixtures.mjs';
import { readGguf, unescapeRwkvToken } from '../reference/gguf-read.mjs';
import { dequantize, typeBytes } from '../reference/ggml-dequant.mjs';
import { referenceDir, fixtureDir, readF32, maxAbsDiff } from './helpers.mjs';
import * as rwkv from '../../js/rwkv.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rwkv-gguf-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const fixture = buildFixtureModel(FIXTURES.L3);
const byName = new Map(fixture.tensors.map((t) => [t.name, t]));
const cfg = ggufConfigOf(fixture.tensors);

async function written(type, opts = {}) {
  const file = path.join(tmp, `${type}-${opts.alignment ?? 32}-${opts.tag ?? ''}.gguf`);
  await writeGguf(file, { config: cfg, tensors: opts.tensors ?? fixture.tensors, type, ...opts });
  return { file, g: readGguf(fs.readFileSync(file)) };
}
const tensor = (g, name) => {
  const t = g.tensors.find((x) => x.name === name);
  assert.ok(t, `GGUF lacks ${name}`);
  return t;
};
const values = (t) => dequantize(t.type, t.data, t.ne.reduce((a, b) => a * b, 1));
// (R, K) row-major transposed to (K, R).
const transpose = (x, R, K) => {
  const out = new Float32Array(R * K);
  for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) out[k * R + r] = x[r * K + k];
  return out;
};

test('an F32 GGUF holds the rwkv7 metadata and every tensor under llama.cpp names and shapes', async () => {
  const { g } = await written('F32', { alignment: 64 });
  assert.equal(g.version, 3);
  const m = g.metadata;
  assert.equal(m.get('general.architecture'), 'rwkv7');
  assert.equal(m.get('general.alignment'), 64);
  assert.equal(m.get('rwkv7.block_count'), 3);
  assert.equal(m.get('rwkv7.embedding_length'), 64);
  assert.equal(m.get('rwkv7.wkv.head_size'), 32);
  assert.equal(m.get('rwkv7.feed_forward_length'), 224);
  assert.equal(m.get('rwkv7.attention.decay_lora_rank'), 16);
  assert.equal(m.get('rwkv7.attention.iclr_lora_rank'), 8);
  assert.equal(m.get('rwkv7.attention.value_residual_mix_lora_rank'), 12);
  assert.equal(m.get('rwkv7.attention.gate_lora_rank'), 24);
  assert.ok(Math.abs(m.get('rwkv7.attention.layer_norm_epsilon') - 1e-5) < 1e-12);
  // 6 global tensors + 28 per layer (4 norms, lerp fused, w/a/v 0-1-2, g1/g2, k_k/k_a/r_k,
  // 4 C x C matrices, ln_x weight and bias, 3 channel-mix tensors).
  assert.equal(g.tensors.length, 6 + 3 * 28);
  assert.equal(g.dataStart % 64, 0);
  for (const t of g.tensors) assert.equal(t.offset % 64, 0, `${t.name} offset ${t.offset}`);

  assert.deepEqual(tensor(g, 'token_embd.weight').ne, [64, 300]);
  assert.deepEqual(values(tensor(g, 'token_embd.weight')), byName.get('emb.weight').data);
  assert.deepEqual(values(tensor(g, 'output.weight')), byName.get('head.weight').data);
  assert.deepEqual(values(tensor(g, 'token_embd_norm.bias')), byName.get('blocks.0.ln0.bias').data);
  assert.deepEqual(tensor(g, 'blk.2.channel_mix_key.weight').ne, [64, 224]);
  assert.deepEqual(values(tensor(g, 'blk.2.channel_mix_value.weight')), byName.get('blocks.2.ffn.value.weight').data);
  assert.deepEqual(values(tensor(g, 'blk.1.time_mix_ln.bias')), byName.get('blocks.1.att.ln_x.bias').data);
  const fused = tensor(g, 'blk.1.time_mix_lerp_fused.weight');
  assert.deepEqual(fused.ne, [64, 1, 1, 6]);
  const fv = values(fused);
  ['r', 'w', 'k', 'v', 'a', 'g'].forEach((x, i) =>
    assert.deepEqual(fv.subarray(64 * i, 64 * (i + 1)), byName.get(`blocks.1.att.x_${x}`).data, `slot ${i} is x_${x}`));
  const w1 = tensor(g, 'blk.1.time_mix_w1.weight');
  assert.deepEqual(w1.ne, [64, 16]);  // stored (Dw, C): the transpose of att.w1 (C, Dw)
  assert.deepEqual(values(w1), transpose(byName.get('blocks.1.att.w1').data, 64, 16));
  assert.deepEqual(tensor(g, 'blk.2.time_mix_v2.weight').ne, [12, 64]);
  // Layer 0: v0/v1/v2 are a0/a1/a2 (the fixture's own block-0 v tensors are dropped).
  assert.deepEqual(tensor(g, 'blk.0.time_mix_v1.weight').ne, [64, 8]);
  assert.deepEqual(values(tensor(g, 'blk.0.time_mix_v1.weight')), transpose(byName.get('blocks.0.att.a1').data, 64, 8));
  assert.deepEqual(values(tensor(g, 'blk.0.time_mix_v0.weight')), byName.get('blocks.0.att.a0').data);
  const rk = tensor(g, 'blk.0.time_mix_r_k.weight');
  assert.deepEqual(rk.ne, [64]);
  assert.deepEqual(values(rk), byName.get('blocks.0.att.r_k').data);
  assert.equal(tensor(g, 'blk.0.time_mix_g1.weight').type, 'F32');
});

for (const [type, tol] of [['F16', 2 ** -11], ['BF16', 2 ** -8]])
  test(`${type}: the large matrices are ${type} rounded to nearest, the rest F32`, async () => {
    const { g } = await written(type);
    assert.equal(tensor(g, 'blk.0.time_mix_key.weight').type, type);
    assert.equal(tensor(g, 'blk.0.time_mix_a1.weight').type, 'F32');
    const x = byName.get('blocks.0.att.key.weight').data, y = values(tensor(g, 'blk.0.time_mix_key.weight'));
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * tol, `element ${i}: ${x[i]} -> ${y[i]}`);
  });

// Per block of 32: the reference decode is within half a step (Q8_0) or one step (Q4_0,
// whose most positive level is clamped) of the input, plus the f16 rounding of the scale
// over the largest level, and the step is the block's extreme over 127 (Q8_0) or 8 (Q4_0)
// as an f16.
for (const [type, levels, slack] of [['Q8_0', 127, 0.5], ['Q4_0', 8, 1]])
  test(`${type}: blocks decode (reference decoder) to the input within ${slack} step`, async () => {
    const { g } = await written(type);
    for (const [gname, key] of [['blk.1.time_mix_value.weight', 'blocks.1.att.value.weight'], ['output.weight', 'head.weight']]) {
      const t = tensor(g, gname);
      assert.equal(t.type, type);
      const x = byName.get(key).data, y = values(t);
      for (let b = 0; b < x.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
        const step = amax / levels;
        const d = Math.abs(dequantize('F16', new Uint8Array(t.data.buffer, t.data.byteOffset + b * typeBytes(type, 32), 2), 1)[0]);
        assert.ok(Math.abs(d - step) <= step * 2 ** -10, `block ${b}: scale ${d} vs ${step}`);
        for (let j = 0; j < 32; j++)
          assert.ok(Math.abs(x[32 * b + j] - y[32 * b + j]) <= (slack + levels * 2 ** -11) * step + 1e-7, `${gname} block ${b} value ${j}`);
      }
    }
  });

test('Q8_0 and Q4_0 blocks are byte for byte what ggml writes for a hand-worked block', async () => {
  // One block: values k/8 - 2 for k = 0..31 (amax 2, the value -2 first).
  const row = Float32Array.from({ length: 32 }, (_, k) => k / 8 - 2);
  const { quantizeRow } = await import('../../js/formats/ggml-types.mjs');
  const q8 = new Uint8Array(34);
  quantizeRow('Q8_0', row, q8);
  // d = 2/127 = 2^-6 * 1.0079 as f16: exponent 9, mantissa 8 (0x2408); q = roundf(x / d)
  // with 1/d in float32, halves away from zero.
  assert.equal(q8[0] | (q8[1] << 8), 0x2408);
  const q8v = Array.from(new Int8Array(q8.buffer, 2, 32));
  assert.deepEqual(q8v, Array.from(row, (x) => { const v = Math.fround(x * Math.fround(1 / Math.fround(2 / 127))); return Math.sign(v) * Math.floor(Math.abs(v) + 0.5); }));
  assert.equal(q8v[0], -127);
  assert.equal(q8v[4], -95);  // x = 4/8 - 2 = -1.5, times 63.5
  const q4 = new Uint8Array(18);
  quantizeRow('Q4_0', row, q4);
  // max = -2 (largest magnitude, first), d = -2 / -8 = 0.25 = f16 0x3400; x/d + 8.5 truncated.
  assert.equal(q4[0] | (q4[1] << 8), 0x3400);
  for (let j = 0; j < 16; j++) {
    const lo = Math.min(15, Math.trunc(row[j] / 0.25 + 8.5)), hi = Math.min(15, Math.trunc(row[j + 16] / 0.25 + 8.5));
    assert.equal(q4[2 + j], lo | (hi << 4), `byte ${j}`);
  }
});

test('a matrix given in pieces of rows writes the same file as given whole, in any tensor order', async () => {
  const whole = await written('Q8_0', { tag: 'whole' });
  const pieces = [];
  for (const t of [...fixture.tensors].reverse()) {
    if (t.name !== 'emb.weight') { pieces.push(t); continue; }
    const C = t.shape[1];
    for (let r = 0; r < t.shape[0]; r += 70) {
      const n = Math.min(70, t.shape[0] - r);
      pieces.push({ name: t.name, shape: [n, C], row: r, data: t.data.subarray(r * C, (r + n) * C) });
    }
  }
  async function* gen() { for (const t of pieces) yield t; }
  const { file } = await written('Q8_0', { tag: 'pieces', tensors: gen() });
  assert.ok(fs.readFileSync(file).equals(fs.readFileSync(whole.file)));
});

test('the writer names a missing, misshapen or unknown tensor and leaves no file', async () => {
  const file = path.join(tmp, 'bad.gguf');
  const without = fixture.tensors.filter((t) => t.name !== 'blocks.2.att.g2');
  await assert.rejects(writeGguf(file, { config: cfg, tensors: without }), /'blocks\.2\.att\.g2' was not given/);
  assert.equal(fs.existsSync(file), false);
  const bad = fixture.tensors.map((t) => (t.name === 'blocks.1.ffn.key.weight' ? { ...t, shape: [64, 224] } : t));
  await assert.rejects(writeGguf(file, { config: cfg, tensors: bad }), /'blocks\.1\.ffn\.key\.weight' has shape \[64,224\], expected \[224,64\]/);
  await assert.rejects(writeGguf(file, { config: cfg, tensors: [{ name: 'blocks.0.att.x_x', shape: [64], data: new Float32Array(64) }] }), /unknown tensor 'blocks\.0\.att\.x_x'/);
  assert.equal(fs.existsSync(file), false);
});

const vocabFile = path.join(referenceDir, 'vocab/rwkv_vocab_v20230424.txt');
test('the World vocabulary is written as llama.cpp\'s converter writes it', { skip: fs.existsSync(vocabFile) ? false : `${vocabFile} is missing` }, async () => {
  const small = buildFixtureModel({ ...FIXTURES.L3, L: 1, V: 65536 });
  const { g } = await written('Q4_0', { tag: 'vocab', tensors: small.tensors, config: ggufConfigOf(small.tensors), vocab: fs.readFileSync(vocabFile, 'utf8') });
  const m = g.metadata;
  assert.equal(m.get('tokenizer.ggml.model'), 'rwkv');
  const toks = m.get('tokenizer.ggml.tokens'), types = m.get('tokenizer.ggml.token_type');
  assert.equal(toks.length, 65536);
  assert.equal(g.types.get('tokenizer.ggml.tokens'), 9);
  assert.deepEqual([toks[0], types[0]], ['<s>', 3]);
  assert.deepEqual([toks[1], toks[10], toks[11], toks[12], toks[40], toks[93], toks[274]], ['\\x00', '\\t', '\\n', '\\x0b', "'", '\\\\', " '"]);
  assert.equal(toks[2993], '\\xe0\\xb9');
  assert.equal(unescapeRwkvToken(toks[2993]).toString('hex'), 'e0b9');
  assert.deepEqual([types[1], types[65529], types[65530]], [1, 1, 5]);
  assert.equal(toks[65535], '[PAD65535]');
  assert.equal(unescapeRwkvToken(toks[65529]).toString(), ' '.repeat(128));
  assert.equal(m.get('tokenizer.ggml.eot_token_id'), 261);
});

// Through the library (the wasm core): GGUF fixtures of tests/reference/make-gguf-fixtures.mjs.
const ggufFixture = (name) => path.join(fixtureDir, name);
const skipNoGguf = fs.existsSync(ggufFixture('fix-L3-C64-H2.Q8_0.gguf')) ? false
  : `GGUF fixtures missing in ${fixtureDir} (run: node tests/reference/make-gguf-fixtures.mjs)`;

async function logitsOf(model, tokens) {
  const s = await model.createSession();
  const out = [];
  for (const t of tokens) out.push(...(await s.step(t)));
  return Float32Array.from(out);
}
const goldenOf = (run) => ({
  tokens: JSON.parse(fs.readFileSync(ggufFixture(`${run}.json`), 'utf8')).tokens,
  logits: readF32(ggufFixture(`${run}.logits.f32`)),
});

test('the library loads GGUF files: golden logits, Q8_0 kept as int8, k-quants decoded or requantized', { skip: skipNoGguf }, async () => {
  const g3 = goldenOf('fix-L3-C64-H2.seq40');
  for (const [file, dtype, tol] of [['fix-L3-C64-H2.F16.gguf', 'F32', 5e-4], ['fix-L3-C64-H2.Q8_0.gguf', 'Q8_0', 0.5]]) {
    const model = await rwkv.load(ggufFixture(file), { cache: false });
    try {
      assert.equal(model.config.dtype, dtype, file);
      assert.equal(model.config.nLayer, 3);
      assert.ok(maxAbsDiff(await logitsOf(model, g3.tokens), g3.logits) <= tol, file);
    } finally {
      await model.dispose();
    }
  }
  const gk = goldenOf('gguf-golden/fix-L2-C256.Q5_K.seq16');
  const bytes = new Uint8Array(fs.readFileSync(ggufFixture('fix-L2-C256.Q5_K.gguf')));
  for (const [quant, dtype, tol] of [['f32', 'F32', 5e-4], ['int8', 'Q8_0', 0.5], [undefined, 'BF16', 0.5]]) {
    const model = await rwkv.load(bytes.slice(), { cache: false, quant });
    try {
      assert.equal(model.config.dtype, dtype, `quant ${quant}`);
      assert.ok(maxAbsDiff(await logitsOf(model, gk.tokens), gk.logits) <= tol, `quant ${quant}`);
    } finally {
      await model.dispose();
    }
  }
});

test('a GGUF with the World vocabulary tokenizes as the vocabulary file, and converts to .rwkv with it',
  { skip: skipNoGguf || (fs.existsSync(ggufFixture('rand-L2-D128-V65536.Q8_0.gguf')) ? false : 'rand-L2-D128-V65536.Q8_0.gguf is missing (no shared reference models)') },
  async () => {
    const text = 'The Eiffel Tower is in Paris.\n\nUser: 你好 \'quoted\' back\\slash';
    const model = await rwkv.load(ggufFixture('rand-L2-D128-V65536.Q8_0.gguf'), { cache: false });
    const withFile = await rwkv.load(path.join(referenceDir, 'models/rand-L2-D128-V65536.pth'), { cache: false, vocab: vocabFile });
    try {
      assert.equal(model.hasVocab, true);
      assert.deepEqual(await model.tokenize(text), await withFile.tokenize(text));
      const out = path.join(tmp, 'world.rwkv');
      await model.save(out);
      const again = await rwkv.load(out, { cache: false });
      assert.equal(again.hasVocab, true);
      assert.deepEqual(await again.tokenize(text), await withFile.tokenize(text));
      await again.dispose();
    } finally {
      await model.dispose();
      await withFile.dispose();
    }
  });

test('a truncated or foreign GGUF is a ModelFormatError that says what is wrong', { skip: skipNoGguf }, async () => {
  const good = fs.readFileSync(ggufFixture('fix-L3-C64-H2.Q4_0.gguf'));
  await assert.rejects(rwkv.load(new Uint8Array(good.subarray(0, good.length >> 1)), { cache: false }),
    (e) => e instanceof rwkv.ModelFormatError && /ended after \d+ bytes, in the data of tensor '[^']+' \(truncated download\?\)/.test(e.message));
  const other = Buffer.from(good);
  const at = other.indexOf('rwkv7', other.indexOf('general.architecture'));
  other.write('llama', at, 'latin1');
  await assert.rejects(rwkv.load(new Uint8Array(other), { cache: false }),
    (e) => e instanceof rwkv.ModelFormatError && /'llama' model; only RWKV-7/.test(e.message));
});
