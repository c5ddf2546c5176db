#!/usr/bin/env node
// make-fixtures.mjs — writes the project's self-made RWKV-7 test fixtures.
//
//   node scripts/make-fixtures.mjs [outDir=build/fixtures]
//
// No Python, no torch, no npm packages: the .pth (torch.save zip + pickle) writer of
// js/formats/pth-writer.mjs and the .safetensors writer below are written from the
// formats' descriptions, the weights drawn by the rules of js/bench/random-model.mjs, and
// the golden outputs come from the plain-JS reference in tests/reference/rwkv7.mjs.
// Output is byte-for-byte deterministic.
//
// Written files (see FIXTURES / main() at the bottom):
//   fix-L3-C64-H2.pth                 bf16, OrderedDict, torch-2.x style zip
//   fix-L3-C64-H2.f32.safetensors     same values as F32, other key order, no block-0 v0/v1/v2
//   fix-L2-C64-H1.fp16.pth            f16, plain dict, shuffled keys, dir "fixmodel/",
//                                     ln1.weight/ln1.bias share one storage (bias at offset C)
//   bad-missing-key.pth, bad-shape.pth, bad-truncated.pth
//   fix-L3-C64-H2.rwkv, fix-L2-C64-H1.fp16.rwkv   our own format (bf16 + vocabulary; f16)
//   fix-L3-C64-H2.seq40.{json,logits.f32,state.f32}
//   fix-L2-C64-H1.fp16.seq24.{json,logits.f32,state.f32}
//
// Exported helpers are reused by tests/reference/check-reference.mjs.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { mulberry32, officialKeys, tensorValues } from '../js/bench/random-model.mjs';
import { DTYPES, OP, encodeTensor, f32ToBf16Bits, f32ToF16Bits, writePth } from '../js/formats/pth-writer.mjs';
import { loadModel, runSequence } from '../tests/reference/rwkv7.mjs';

export { writePth };

// ---------------------------------------------------------------------------
// Float conversions (the writing side is in js/formats/pth-writer.mjs)
// ---------------------------------------------------------------------------

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

export function bf16BitsToF32(h) {
  cvtU32[0] = (h & 0xffff) << 16; // exact
  return cvtF32[0];
}

export function f16BitsToF32(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Returns a new Float32Array holding `data` rounded to `dtype` (exact f32 values). */
export function roundToDtype(data, dtype) {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (dtype === 'bf16') out[i] = bf16BitsToF32(f32ToBf16Bits(data[i]));
    else if (dtype === 'f16') out[i] = f16BitsToF32(f32ToF16Bits(data[i]));
    else out[i] = data[i];
  }
  return out;
}

/** Decodes little-endian bytes of a safetensors dtype ('F32'|'BF16'|'F16') to Float32Array. */
function decodeTensor(bytes, st, count) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (st === 'F32') out[i] = dv.getFloat32(4 * i, true);
    else if (st === 'BF16') out[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
    else if (st === 'F16') out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
    else throw new Error(`unsupported dtype ${st}`);
  }
  return out;
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------
// Fixture models
// ---------------------------------------------------------------------------

export const FIXTURES = {
  L3: {
    name: 'fix-L3-C64-H2', seed: 0x7e57a001, dtype: 'bf16',
    L: 3, C: 64, N: 32, F: 224, V: 300, Dw: 16, Da: 8, Dv: 12, Dg: 24, block0V: true,
  },
  L2: {
    name: 'fix-L2-C64-H1.fp16', seed: 0x7e57a002, dtype: 'f16',
    L: 2, C: 64, N: 64, F: 256, V: 260, Dw: 24, Da: 12, Dv: 20, Dg: 16, block0V: false,
  },
};

/**
 * Builds the tensors of a fixture model. Every value is already rounded to
 * cfg.dtype, so the Float32Arrays equal what a loader reads back from the file.
 * Each tensor is drawn from its own PRNG stream (seed ^ hash(name)), so the values
 * do not depend on key order or on which optional keys exist.
 * Returns { cfg, tensors: [{name, shape: number[], data: Float32Array}] } in official order.
 */
export function buildFixtureModel(cfg) {
  const tensors = officialKeys(cfg).map(({ name, shape }) => {
    const [raw] = tensorValues(cfg, name, shape, numel(shape));
    return { name, shape, data: roundToDtype(raw, cfg.dtype) };
  });
  return { cfg, tensors };
}

/** Map name -> {shape, data} view of a tensor list (what loadModel() takes). */
export const tensorMap = (tensors) => new Map(tensors.map((t) => [t.name, t]));

/** Deterministic Fisher–Yates shuffle (returns a new array). */
function shuffled(arr, seed) {
  const a = arr.slice();
  const rand = mulberry32(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Deterministic token ids in [0, V) with token 0 at `zeroAt` and V-1 at `lastAt`. */
export function fixtureTokens(T, V, seed, zeroAt, lastAt) {
  const rand = mulberry32(seed);
  const toks = Array.from({ length: T }, () => 1 + Math.floor(rand() * (V - 1)));
  toks[zeroAt] = 0;
  toks[lastAt] = V - 1;
  return toks;
}

// ---------------------------------------------------------------------------
// ZIP and pickle readers (the writers are in js/formats/pth-writer.mjs)
// ---------------------------------------------------------------------------

/** Reads a ZIP's central directory. Returns Map name -> Uint8Array payload (zero-copy). */
export function readZip(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('zip: no end-of-central-directory record (truncated file?)');
  let count = dv.getUint16(eocd + 10, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && dv.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = Number(dv.getBigUint64(eocd - 12, true));
    count = Number(dv.getBigUint64(z64 + 32, true));
    cdOffset = Number(dv.getBigUint64(z64 + 48, true));
  }
  const files = new Map();
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new Error('zip: bad central directory entry');
    if (dv.getUint16(p + 10, true) !== 0) throw new Error('zip: compressed entry');
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('latin1');
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + size > buf.length) throw new Error(`zip: entry ${name} runs past end of file`);
    files.set(name, buf.subarray(start, start + size));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

/**
 * Minimal torch .pth reader (zip + the pickle subset torch.save emits), for
 * round-trip self-checks and for check-reference. Contiguous or strided tensors.
 * Returns Map name -> {shape, data: Float32Array, dtype}.
 */
export function readPth(buf) {
  const files = readZip(buf);
  const pklName = [...files.keys()].find((n) => n.endsWith('data.pkl'));
  if (!pklName) throw new Error('pth: no data.pkl');
  const dir = pklName.slice(0, -'data.pkl'.length);
  const pkl = files.get(pklName);
  const dv = new DataView(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const stack = [];
  const marks = [];
  const memo = new Map();
  const popMark = () => stack.splice(marks.pop());
  const utf8 = (a, n) => new TextDecoder().decode(pkl.subarray(a, a + n));
  let i = 0;
  let result;
  while (result === undefined) {
    if (i >= pkl.length) throw new Error('pickle: ran off the end');
    const op = pkl[i++];
    switch (op) {
      case OP.PROTO: i++; break;
      case OP.FRAME: i += 8; break;
      case OP.MARK: marks.push(stack.length); break;
      case OP.STOP: result = stack.pop(); break;
      case OP.EMPTY_DICT: stack.push(new Map()); break;
      case OP.EMPTY_TUPLE: stack.push([]); break;
      case OP.EMPTY_LIST: stack.push([]); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.BININT1: stack.push(pkl[i]); i += 1; break;
      case OP.BININT2: stack.push(dv.getUint16(i, true)); i += 2; break;
      case OP.BININT: stack.push(dv.getInt32(i, true)); i += 4; break;
      case OP.LONG1: { const n = pkl[i++]; let v = 0n; for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(pkl[i + k]); if (n && pkl[i + n - 1] & 0x80) v -= 1n << BigInt(8 * n); stack.push(Number(v)); i += n; break; }
      case OP.BINFLOAT: stack.push(dv.getFloat64(i, false)); i += 8; break;
      case OP.BINUNICODE: { const n = dv.getUint32(i, true); stack.push(utf8(i + 4, n)); i += 4 + n; break; }
      case OP.SHORT_BINUNICODE: { const n = pkl[i]; stack.push(utf8(i + 1, n)); i += 1 + n; break; }
      case OP.BINUNICODE8: { const n = Number(dv.getBigUint64(i, true)); stack.push(utf8(i + 8, n)); i += 8 + n; break; }
      case OP.GLOBAL: { const e1 = pkl.indexOf(10, i); const e2 = pkl.indexOf(10, e1 + 1); stack.push({ global: `${utf8(i, e1 - i)}.${utf8(e1 + 1, e2 - e1 - 1)}` }); i = e2 + 1; break; }
      case OP.BINPUT: memo.set(pkl[i++], stack.at(-1)); break;
      case OP.LONG_BINPUT: memo.set(dv.getUint32(i, true), stack.at(-1)); i += 4; break;
      case OP.MEMOIZE: memo.set(memo.size, stack.at(-1)); break;
      case OP.BINGET: stack.push(memo.get(pkl[i++])); break;
      case OP.LONG_BINGET: stack.push(memo.get(dv.getUint32(i, true))); i += 4; break;
      case OP.TUPLE: stack.push(popMark()); break;
      case OP.TUPLE1: stack.push(stack.splice(-1)); break;
      case OP.TUPLE2: stack.push(stack.splice(-2)); break;
      case OP.TUPLE3: stack.push(stack.splice(-3)); break;
      case OP.APPEND: { const v = stack.pop(); stack.at(-1).push(v); break; }
      case OP.APPENDS: { const vs = popMark(); stack.at(-1).push(...vs); break; }
      case OP.SETITEM: { const v = stack.pop(); const k = stack.pop(); stack.at(-1).set(k, v); break; }
      case OP.SETITEMS: { const kv = popMark(); for (let k = 0; k < kv.length; k += 2) stack.at(-1).set(kv[k], kv[k + 1]); break; }
      case OP.BUILD: stack.pop(); break; // e.g. state_dict's _metadata: ignored
      case OP.BINPERSID: { const [kind, type, key, , n] = stack.pop(); if (kind !== 'storage') throw new Error('pickle: bad persistent id'); stack.push({ storage: type.global, key, numel: n }); break; }
      case OP.REDUCE: {
        const args = stack.pop();
        const fn = stack.pop().global;
        if (fn === 'collections.OrderedDict') stack.push(new Map());
        else if (fn === 'torch._utils._rebuild_tensor_v2') stack.push({ tensor: args });
        else throw new Error(`pickle: unsupported callable ${fn}`);
        break;
      }
      default: throw new Error(`pickle: unsupported opcode 0x${op.toString(16)} at ${i - 1}`);
    }
  }
  const ST = { 'torch.BFloat16Storage': 'BF16', 'torch.HalfStorage': 'F16', 'torch.FloatStorage': 'F32' };
  const out = new Map();
  for (const [name, v] of result) {
    const [st, offset, shape, stride] = v.tensor;
    const kind = ST[st.storage];
    if (!kind) throw new Error(`pth: unsupported storage ${st.storage}`);
    const blob = files.get(`${dir}data/${st.key}`);
    if (!blob) throw new Error(`pth: missing storage data/${st.key}`);
    const all = decodeTensor(blob, kind, st.numel);
    const data = new Float32Array(numel(shape));
    for (let e = 0; e < data.length; e++) { // gather through strides
      let rem = e, src = offset;
      for (let d = shape.length - 1; d >= 0; d--) { src += (rem % shape[d]) * stride[d]; rem = Math.floor(rem / shape[d]); }
      data[e] = all[src];
    }
    out.set(name, { shape, data, dtype: kind });
  }
  return out;
}

// ---------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------

/**
 * Writes safetensors: u64 LE header length, JSON header (space-padded to a multiple
 * of 8), then the tensors' bytes in the given order.
 * tensors: [{name, shape, data: Float32Array}]; dtype: 'f32'|'bf16'|'f16'.
 */
export function writeSafetensors(tensors, dtype, metadata = {}) {
  const header = { __metadata__: metadata };
  const blobs = [];
  let off = 0;
  for (const t of tensors) {
    const bytes = encodeTensor(t.data, dtype);
    header[t.name] = { dtype: DTYPES[dtype].st, shape: t.shape, data_offsets: [off, off + bytes.length] };
    blobs.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...blobs]);
}

/** Reads safetensors into Map name -> {shape, data: Float32Array, dtype}. */
export function readSafetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = new Map();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = buf.subarray(base + h.data_offsets[0], base + h.data_offsets[1]);
    out.set(name, { shape: h.shape, data: decodeTensor(bytes, h.dtype, numel(h.shape)), dtype: h.dtype });
  }
  return out;
}

// ---------------------------------------------------------------------------
// .rwkv (our own format, docs/format.md), written from the spec, independently of the
// C++ writer (src/format.cpp): the reader is tested against both.
// ---------------------------------------------------------------------------

/** The large matrices a quantized file holds as Q8_0 / Q4_0 (as LoadOptions converts). */
const QUANTIZED = /^(emb|head)\.weight$|\.att\.(receptance|key|value|output)\.weight$|\.ffn\.(key|value)\.weight$/;

/**
 * One (rows, cols) matrix as a Q8_0 or Q4_0 blob (src/quant.h): every row's q bytes, then
 * the float32 scales, one per block of 32 values. Values need not match the C++
 * quantizer's rounding: the layout is what matters here.
 */
export function quantizeBlob(data, [rows, cols], type) {
  if (cols % 32) throw new Error(`quantizeBlob: ${cols} columns is not a multiple of 32`);
  const blocks = rows * cols / 32;
  const qBytes = type === 'Q8_0' ? rows * cols : rows * cols / 2;
  const out = Buffer.alloc(qBytes + 4 * blocks);
  for (let b = 0; b < blocks; b++) {
    const x = data.subarray(32 * b, 32 * b + 32);
    let m = 0;
    for (const v of x) if (Math.abs(v) > Math.abs(m)) m = v;
    const scale = type === 'Q8_0' ? Math.abs(m) / 127 : m / -8;
    const q = Array.from(x, (v) => (scale ? Math.round(v / scale) : 0));
    if (type === 'Q8_0') q.forEach((v, i) => out.writeInt8(Math.max(-127, Math.min(127, v)), 32 * b + i));
    else for (let j = 0; j < 16; j++) out[16 * b + j] = (Math.max(-8, Math.min(7, q[j])) + 8) | ((Math.max(-8, Math.min(7, q[j + 16])) + 8) << 4);
    out.writeFloatLE(scale, qBytes + 4 * b);
  }
  return out;
}

/**
 * Writes a .rwkv file. tensors: [{name, shape, data: Float32Array}] in file order;
 * opts.dtype 'f32'|'bf16'|'f16' for every tensor, opts.quant 'Q8_0'|'Q4_0' for the large
 * matrices, opts.vocab the vocabulary text to embed, opts.metadata strings.
 */
export function writeRwkv(tensors, { dtype = 'bf16', quant, vocab, metadata = {} } = {}) {
  const align = (n) => Math.ceil(n / 64) * 64;
  const blobs = tensors.map((t) => (quant && QUANTIZED.test(t.name)
    ? { dtype: quant, bytes: quantizeBlob(t.data, t.shape, quant) }
    : { dtype: DTYPES[dtype].st, bytes: Buffer.from(encodeTensor(t.data, dtype)) }));
  const shape = (name) => tensors.find((t) => t.name === name)?.shape ?? [0, 0];
  const layers = new Set(tensors.map((t) => /^blocks\.(\d+)\./.exec(t.name)?.[1]).filter((x) => x !== undefined)).size;
  const config = {
    n_layer: layers, n_embd: shape('emb.weight')[1], n_head: shape('blocks.0.att.r_k')[0], head_size: shape('blocks.0.att.r_k')[1],
    ffn_size: shape('blocks.0.ffn.key.weight')[0], vocab_size: shape('emb.weight')[0], lora_w: shape('blocks.0.att.w1')[1],
    lora_a: shape('blocks.0.att.a1')[1], lora_v: layers > 1 ? shape('blocks.1.att.v1')[1] : 0, lora_g: shape('blocks.0.att.g1')[1],
  };
  const vocabBytes = vocab === undefined ? null : Buffer.from(vocab, 'utf8');
  // The offsets are in the JSON that precedes them: grow the header room until it fits.
  let start = 64, json, end;
  for (;;) {
    const table = {};
    let at = start;
    end = start;
    tensors.forEach((t, i) => {
      table[t.name] = { dtype: blobs[i].dtype, shape: t.shape, offset: at, bytes: blobs[i].bytes.length };
      end = at + blobs[i].bytes.length;
      at = align(end);
    });
    const header = { architecture: 'x070', config, tensors: table };
    if (vocabBytes) {
      header.vocabulary = { format: 'rwkv-vocab-txt', offset: at, bytes: vocabBytes.length };
      end = at + vocabBytes.length;
    }
    header.metadata = metadata;
    json = Buffer.from(JSON.stringify(header), 'utf8');
    if (align(16 + json.length) <= start) break;
    start = align(16 + json.length);
  }
  const out = Buffer.alloc(end);
  Buffer.from([0x89, 0x52, 0x57, 0x4b, 0x56, 0x0d, 0x0a, 0x1a]).copy(out, 0);
  out.writeUInt32LE(1, 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, 16);
  let at = start;
  for (const { bytes } of blobs) {
    bytes.copy(out, at);
    at = align(at + bytes.length);
  }
  if (vocabBytes) vocabBytes.copy(out, at);
  return out;
}

// ---------------------------------------------------------------------------
// Golden files (the format of shared/reference/golden: docs/computation.md#golden-runs)
// ---------------------------------------------------------------------------

const f32Bytes = (f32) => {
  const b = Buffer.alloc(f32.length * 4);
  for (let i = 0; i < f32.length; i++) b.writeFloatLE(f32[i], 4 * i);
  return b;
};

/**
 * Runs the reference over `tokens` and writes RUN.json / RUN.logits.f32 / RUN.state.f32
 * into outDir. `modelFile` is the model's file name (same folder).
 * Returns {logits: Float32Array, state: Float32Array, argmax, files: [3 file names]}.
 */
export function writeGolden(outDir, run, modelFile, tensors, tokens) {
  const model = loadModel(tensorMap(tensors));
  const { logits, state, argmax } = runSequence(model, tokens);
  const json = {
    model: modelFile,
    tokens,
    logits_shape: [tokens.length, model.V],
    argmax,
    state_floats: state.length,
  };
  const files = [`${run}.json`, `${run}.logits.f32`, `${run}.state.f32`];
  fs.writeFileSync(path.join(outDir, files[0]), JSON.stringify(json, null, 1));
  fs.writeFileSync(path.join(outDir, files[1]), f32Bytes(logits));
  fs.writeFileSync(path.join(outDir, files[2]), f32Bytes(state));
  return { logits, state, argmax, files };
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

function sameTensors(a, b, label) {
  const want = tensorMap(a);
  if (want.size !== b.size) throw new Error(`${label}: ${b.size} tensors read back, ${want.size} written`);
  for (const [name, t] of want) {
    const r = b.get(name);
    if (!r || JSON.stringify(r.shape) !== JSON.stringify(t.shape)) throw new Error(`${label}: ${name} missing or wrong shape`);
    for (let i = 0; i < t.data.length; i++) if (r.data[i] !== t.data[i]) throw new Error(`${label}: ${name}[${i}] differs`);
  }
}

/** Writes every fixture into outDir; returns the list of file names written. */
/**
 * A vocabulary file in the format of rwkv_vocab_v20230424.txt (`ID REPR LEN`, Python
 * str or bytes literals) with V - 1 entries: ids 1..256 are the bytes 0..255 written as
 * the official file writes them, then multi-byte tokens with quotes, escapes, UTF-8 and
 * a partial UTF-8 sequence, so greedy longest match has real choices to make.
 */
export function fixtureVocab(V) {
  const pyStr = (s) => {
    const q = s.includes("'") && !s.includes('"') ? '"' : "'";
    let out = '';
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (ch === '\\') out += '\\\\';
      else if (ch === q) out += '\\' + q;
      else if (ch === '\n') out += '\\n';
      else if (ch === '\t') out += '\\t';
      else if (ch === '\r') out += '\\r';
      else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
      else out += ch;
    }
    return q + out + q;
  };
  const lines = [];
  for (let b = 0; b < 256; b++) {
    const repr = b < 128 ? pyStr(String.fromCharCode(b)) : `b'\\x${b.toString(16).padStart(2, '0')}'`;
    lines.push(`${b + 1} ${repr} 1`);
  }
  const words = ['\n\n', 'User', 'Assistant', ': ', ' the', 'the', 'th', 'he', 'hello', ' world', "it's", '"quoted"',
    'back\\slash', '\t\t', '中', '中文', 'é', '👍', 'aa', 'aaaa', 'aaaaaaaa', ' a', 'in', 'ing', ' is', 'er', 'on',
    'an', ' of', ' and', 're', 'at', 'en', 'es', 'ed', 'or', 'to', ' to', 'll', '\x00\x01', 'ab\rc'];
  let id = 257;
  for (const w of words) {
    if (id >= V) break;
    lines.push(`${id++} ${pyStr(w)} ${Buffer.byteLength(w)}`);
  }
  const partial = [[0xe4, 0xb8], [0xf0, 0x9f, 0x91]];  // incomplete UTF-8 as bytes literals
  for (const p of partial) {
    if (id >= V) break;
    lines.push(`${id++} b'${p.map((b) => '\\x' + b.toString(16)).join('')}' ${p.length}`);
  }
  for (let n = 0; id < V; n++) lines.push(`${id++} ${pyStr('tok' + n)} ${3 + String(n).length}`);
  return lines.join('\n') + '\n';
}

export function main(outDir = 'build/fixtures') {
  fs.mkdirSync(outDir, { recursive: true });
  const written = [];
  const write = (name, bytes) => { fs.writeFileSync(path.join(outDir, name), bytes); written.push(name); return bytes; };

  // --- fix-L3-C64-H2: bf16, official key order, OrderedDict, torch 2.x zip -------------
  const L3 = buildFixtureModel(FIXTURES.L3);
  const l3Pth = writePth(L3.tensors, { dtype: 'bf16', dir: 'fix-L3-C64-H2', container: 'OrderedDict', style: 'torch' });
  write('fix-L3-C64-H2.pth', l3Pth);
  sameTensors(L3.tensors, readPth(l3Pth), 'fix-L3-C64-H2.pth');

  // Same values as F32 safetensors: sorted key order, block-0 v0/v1/v2 dropped.
  const l3St = L3.tensors.filter((t) => !/^blocks\.0\.att\.v[012]$/.test(t.name))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const stBytes = write('fix-L3-C64-H2.f32.safetensors', writeSafetensors(l3St, 'f32', { format: 'pt', source: 'fix-L3-C64-H2.pth' }));
  sameTensors(l3St, readSafetensors(stBytes), 'fix-L3-C64-H2.f32.safetensors');

  // --- fix-L2-C64-H1.fp16: f16, shuffled keys, plain dict, dir 'fixmodel', old-style zip.
  // Each block's ln1.weight and ln1.bias are two views of one storage (bias at offset C);
  // SETITEMS batches of 17 over 69 keys also leave a final single-item SETITEM.
  const L2 = buildFixtureModel(FIXTURES.L2);
  const shareWith = {};
  for (let i = 0; i < FIXTURES.L2.L; i++) shareWith[`blocks.${i}.ln1.bias`] = `blocks.${i}.ln1.weight`;
  const l2Pth = writePth(shuffled(L2.tensors, 0x5eed0b0e), {
    dtype: 'f16', dir: 'fixmodel', container: 'dict', style: 'classic', shareWith, batch: 17,
  });
  write('fix-L2-C64-H1.fp16.pth', l2Pth);
  sameTensors(L2.tensors, readPth(l2Pth), 'fix-L2-C64-H1.fp16.pth');

  // --- broken variants of fix-L3 for loader error tests --------------------------------
  const l3Opts = (dir) => ({ dtype: 'bf16', dir, container: 'OrderedDict', style: 'torch' });
  write('bad-missing-key.pth', writePth(L3.tensors.filter((t) => t.name !== 'blocks.1.att.key.weight'), l3Opts('bad-missing-key')));
  const badShape = L3.tensors.map((t) => {
    if (t.name !== 'blocks.2.ffn.value.weight') return t;
    const [rows, cols] = t.shape; // (64, 224) -> keep the first 200 columns of each row
    const data = new Float32Array(rows * 200);
    for (let r = 0; r < rows; r++) data.set(t.data.subarray(r * cols, r * cols + 200), r * 200);
    return { name: t.name, shape: [rows, 200], data };
  });
  write('bad-shape.pth', writePth(badShape, l3Opts('bad-shape')));
  write('bad-truncated.pth', l3Pth.subarray(0, Math.floor(l3Pth.length * 0.6)));

  // --- golden runs ----------------------------------------------------------------------
  const l3Tokens = fixtureTokens(40, FIXTURES.L3.V, 0x70c3a001, 13, 29); // 0 at 13, V-1 at 29
  const g3 = writeGolden(outDir, 'fix-L3-C64-H2.seq40', 'fix-L3-C64-H2.pth', L3.tensors, l3Tokens);
  // The safetensors copy (no block-0 v0/v1/v2) must give identical results.
  const again = runSequence(loadModel(tensorMap(l3St)), l3Tokens);
  if (again.logits.some((v, i) => v !== g3.logits[i])) throw new Error('safetensors copy gives different logits');
  const g2 = writeGolden(outDir, 'fix-L2-C64-H1.fp16.seq24', 'fix-L2-C64-H1.fp16.pth', L2.tensors,
    fixtureTokens(24, FIXTURES.L2.V, 0x70c3a002, 5, 18)); // 0 at 5, V-1 at 18

  // A state-tuning file for fix-L3: blocks.N.att.time_state (H, N, N), f32.
  const { L, C, N } = FIXTURES.L3;
  const stateTensors = [];
  for (let i = 0; i < L; i++) {
    const rand = mulberry32(0x57a7e000 + i);
    const data = new Float32Array(C * N).map(() => rand() * 2 - 1);
    stateTensors.push({ name: `blocks.${i}.att.time_state`, shape: [C / N, N, N], data });
  }
  write('fix-L3-C64-H2.state.pth', writePth(stateTensors, { dtype: 'f32', dir: 'state' }));

  // A small vocabulary in the official format for the 300-token fixture model.
  write('fix-vocab-300.txt', fixtureVocab(FIXTURES.L3.V));

  // .rwkv twins written by writeRwkv (not by the C++ writer): bf16 with the vocabulary
  // embedded, and f16 (a type the C++ writer never writes). Same values as the .pth files.
  write('fix-L3-C64-H2.rwkv', writeRwkv(L3.tensors, { dtype: 'bf16', vocab: fixtureVocab(FIXTURES.L3.V),
    metadata: { source: 'fix-L3-C64-H2.pth', converter: 'scripts/make-fixtures.mjs' } }));
  write('fix-L2-C64-H1.fp16.rwkv', writeRwkv(shuffled(L2.tensors, 0x5eed0b0f), { dtype: 'f16' }));

  written.push(...g3.files, ...g2.files);
  console.log(`make-fixtures: wrote ${written.length} files to ${outDir}`);
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv[2]);
}
