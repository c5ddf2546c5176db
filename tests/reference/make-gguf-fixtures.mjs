#!/usr/bin/env node
// make-gguf-fixtures.mjs — GGUF test fixtures, written with js/formats/gguf-writer.mjs.
//
//   node tests/reference/make-gguf-fixtures.mjs [outDir=build/fixtures]
//
// Run after scripts/make-fixtures.mjs (it reads fix-L3-C64-H2's values from the same
// builder). Writes into outDir:
//   fix-L3-C64-H2.{F32,F16,BF16,Q8_0,Q4_0}.gguf       golden: fix-L3-C64-H2.seq40
//   <shared model>.{F32,F16,BF16,Q8_0,Q4_0}.gguf       from ../shared/reference/models
//                                                     (tiny-rwkv-7v0-834K.fp32, rand-L2-D128-V1000;
//                                                     rand-L2-D128-V65536 as Q8_0 with the World
//                                                     vocabulary): golden: shared/golden
//   fix-L2-C256.{Q4_K,Q5_K,Q6_K}.gguf                 k-quant matrices (C and F multiples of 256)
//   gguf-golden/fix-L2-C256.{Q4_K,Q5_K,Q6_K}.seq16.{json,logits.f32,state.f32}
//       the JS reference (tests/reference/rwkv7.mjs) on the weights as the reference
//       decoder (tests/reference/ggml-dequant.mjs) reads them back from that GGUF file (in a
//       folder of their own: the other golden runs load their model as it is)
//   ggml-blocks.<TYPE>.{bin,f32}                      random blocks of every block type the
//       C++ reader decodes (finite scales, random values) and the reference decoder's output
// Output is deterministic; nothing here is committed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeGguf, ggufConfigOf } from '../../js/formats/gguf-writer.mjs';
import { buildFixtureModel, FIXTURES, readPth, writeGolden, fixtureTokens } from '../../scripts/make-fixtures.mjs';
import { mulberry32 } from '../../js/bench/random-model.mjs';
import { readGguf } from './gguf-read.mjs';
import { dequantize, typeBytes } from './ggml-dequant.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GGUF_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0'];
export const KQUANT_TYPES = ['Q4_K', 'Q5_K', 'Q6_K'];
export const KQUANT_FIXTURE = {
  name: 'fix-L2-C256', seed: 0x9e0f0256, dtype: 'f32',
  L: 2, C: 256, N: 64, F: 512, V: 300, Dw: 32, Da: 16, Dv: 24, Dg: 48, block0V: false,
};

// Where each block type keeps its scales: f16 fields (byte offsets in a block), Q8_K an f32.
export const BLOCK_SCALES = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q8_1: [0, 2],
  Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], Q8_K: [],
};

// `blocks` random blocks of `type`: random bytes, finite random scales (|d| in [2^-7, 2^-1)).
function randomBlocks(type, blocks, seed) {
  const rand = mulberry32(seed);
  const per = typeBytes(type, type.endsWith('_K') ? 256 : 32);
  const bytes = new Uint8Array(per * blocks).map(() => Math.floor(rand() * 256));
  const dv = new DataView(bytes.buffer);
  for (let b = 0; b < blocks; b++) {
    for (const at of BLOCK_SCALES[type])
      dv.setUint16(b * per + at, (rand() < 0.5 ? 0x8000 : 0) | ((8 + Math.floor(rand() * 6)) << 10) | Math.floor(rand() * 1024), true);
    if (type === 'Q8_K') dv.setFloat32(b * per, (rand() * 2 - 1) / 64, true);
  }
  return bytes;
}

// The GGUF names of the large matrices, the ones written in the chosen type.
function largeName(key) {
  if (key === 'emb.weight') return 'token_embd.weight';
  if (key === 'head.weight') return 'output.weight';
  const m = /^blocks\.(\d+)\.(att|ffn)\.(key|value|receptance|output)\.weight$/.exec(key);
  if (!m) return null;
  return `blk.${m[1]}.${m[2] === 'att' ? 'time_mix' : 'channel_mix'}_${m[3]}.weight`;
}

export async function main(outDir = 'build/fixtures', refDir = path.resolve(here, '../../../shared/reference')) {
  fs.mkdirSync(outDir, { recursive: true });
  const written = [];
  const gguf = async (name, tensors, type, extra = {}) => {
    await writeGguf(path.join(outDir, name), { config: ggufConfigOf(tensors), tensors, type, name, ...extra });
    written.push(name);
  };

  const L3 = buildFixtureModel(FIXTURES.L3);
  for (const t of GGUF_TYPES) await gguf(`fix-L3-C64-H2.${t}.gguf`, L3.tensors, t);

  const models = path.join(refDir, 'models');
  for (const base of ['tiny-rwkv-7v0-834K.fp32', 'rand-L2-D128-V1000']) {
    const file = path.join(models, `${base}.pth`);
    if (!fs.existsSync(file)) continue;
    const tensors = [...readPth(fs.readFileSync(file))].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
    for (const t of GGUF_TYPES) await gguf(`${base}.${t}.gguf`, tensors, t);
  }
  const world = path.join(models, 'rand-L2-D128-V65536.pth'), vocab = path.join(refDir, 'vocab/rwkv_vocab_v20230424.txt');
  if (fs.existsSync(world) && fs.existsSync(vocab)) {
    const tensors = [...readPth(fs.readFileSync(world))].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
    await gguf('rand-L2-D128-V65536.Q8_0.gguf', tensors, 'Q8_0', { vocab: fs.readFileSync(vocab, 'utf8') });
  }

  const K = buildFixtureModel(KQUANT_FIXTURE);
  const tokens = fixtureTokens(16, KQUANT_FIXTURE.V, 0x70c3a256, 3, 11);
  for (const t of KQUANT_TYPES) {
    const name = `${KQUANT_FIXTURE.name}.${t}.gguf`;
    await gguf(name, K.tensors, t);
    const g = readGguf(fs.readFileSync(path.join(outDir, name)));
    const decoded = K.tensors.map((x) => {
      const gname = largeName(x.name);
      if (!gname) return x;  // written as F32: the values themselves
      const info = g.tensors.find((i) => i.name === gname);
      if (info.type !== t) throw new Error(`${name}: ${gname} is ${info.type}, not ${t}`);
      return { ...x, data: dequantize(t, info.data, x.data.length) };
    });
    fs.mkdirSync(path.join(outDir, 'gguf-golden'), { recursive: true });
    written.push(...writeGolden(path.join(outDir, 'gguf-golden'), `${KQUANT_FIXTURE.name}.${t}.seq16`, name, decoded, tokens).files);
  }
  for (const [i, type] of Object.keys(BLOCK_SCALES).entries()) {
    const blocks = 16, count = blocks * (type.endsWith('_K') ? 256 : 32);
    const bytes = randomBlocks(type, blocks, 0xb10c0000 + i);
    const values = dequantize(type, bytes, count);
    fs.writeFileSync(path.join(outDir, `ggml-blocks.${type}.bin`), bytes);
    fs.writeFileSync(path.join(outDir, `ggml-blocks.${type}.f32`), new Uint8Array(values.buffer));
    written.push(`ggml-blocks.${type}.bin`, `ggml-blocks.${type}.f32`);
  }
  return written;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = await main(process.argv[2]);
  console.log(`make-gguf-fixtures: wrote ${files.length} files`);
}
