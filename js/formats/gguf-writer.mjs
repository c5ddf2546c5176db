// Writes an RWKV-7 model as a GGUF file laid out as llama.cpp's converter
// (convert_hf_to_gguf.py, Rwkv7Model) writes one and as llama.cpp's rwkv7 loader expects
// it: general.architecture "rwkv7", the rwkv7.* hyperparameters, the World vocabulary as
// tokenizer.ggml.* when given, and the tensors under their GGUF names with the
// converter's transformations (docs/format.md#gguf):
//   - the six token-shift mixes att.x_r/x_w/x_k/x_v/x_a/x_g fused into
//     blk.N.time_mix_lerp_fused (GGUF shape [C, 1, 1, 6], in the order r w k v a g);
//   - the LoRA matrices att.w1/w2/a1/a2/v1/v2/g1/g2 transposed (att.w1, (C, Dw), is
//     stored as a (Dw, C) matrix: GGUF shape [C, Dw]);
//   - att.r_k (H, N) flattened to [C]; every (1, 1, C) vector squeezed to [C];
//   - layer 0's unused v0/v1/v2 replaced by copies of a0/a1/a2 (llama.cpp needs the
//     tensors and sizes them with the a-path's rank).
// GGUF shapes list the fastest-varying dimension first (ggml's ne), the reverse of ours.
//
// The tensors come from an iterable (sync or async) one at a time, in any order, and
// are written at offsets fixed by the header, so no model is ever held whole: a large
// matrix may even arrive in pieces of whole rows ({name, shape, data, row}).
import fs from 'node:fs';
import { GGML_TYPES, quantizeRow, rowBytes } from './ggml-types.mjs';

const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT = 32;
// gguf_type numbers of metadata values.
const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 };
// llama_ftype of general.file_type: what most weights are.
const FILE_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q4_K: 15, Q5_K: 17, Q6_K: 18, BF16: 32 };
// tokenizer.ggml.token_type values (llama_token_type).
const TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5;
const LERP_ORDER = ['r', 'w', 'k', 'v', 'a', 'g'];
const LORAS = ['w1', 'w2', 'a1', 'a2', 'v1', 'v2', 'g1', 'g2'];

/** The dimensions {L, C, N, F, V, Dw, Da, Dv, Dg} of a model from its tensors' shapes. */
export function ggufConfigOf(tensors) {
  const shapes = new Map();
  for (const t of tensors) shapes.set(t.name, t.shape);
  const need = (k) => {
    const s = shapes.get(k);
    if (!s) throw new Error(`model lacks tensor '${k}'`);
    return s;
  };
  let L = 0;
  for (const k of shapes.keys()) {
    const m = /^blocks\.(\d+)\./.exec(k);
    if (m) L = Math.max(L, Number(m[1]) + 1);
  }
  const [V, C] = need('emb.weight');
  const [H, N] = need('blocks.0.att.r_k');
  return {
    L, C, N, F: need('blocks.0.ffn.key.weight')[0], V, H,
    Dw: need('blocks.0.att.w1')[1], Da: need('blocks.0.att.a1')[1], Dg: need('blocks.0.att.g1')[1],
    Dv: L > 1 ? need('blocks.1.att.v1')[1] : need('blocks.0.att.a1')[1],
  };
}

/**
 * The GGUF tensor plan of a model: [{gguf, ne, type, sources: [{key, slot?, transpose?}]}],
 * in file order. `type` is the type of the large matrices (emb, head, the C x C and FFN
 * matrices); everything else is F32, as llama.cpp's converter keeps vectors and LoRAs.
 */
export function ggufPlan(cfg, type) {
  const { L, C, F, V } = cfg;
  const plan = [];
  const add = (gguf, ne, t, sources) => plan.push({ gguf, ne, type: t, sources });
  const vec = (gguf, key) => add(gguf, [C], 'F32', [{ key }]);
  add('token_embd.weight', [C, V], type, [{ key: 'emb.weight' }]);
  vec('token_embd_norm.weight', 'blocks.0.ln0.weight');
  vec('token_embd_norm.bias', 'blocks.0.ln0.bias');
  for (let i = 0; i < L; i++) {
    const b = `blocks.${i}.`, g = `blk.${i}.`;
    vec(g + 'attn_norm.weight', b + 'ln1.weight');
    vec(g + 'attn_norm.bias', b + 'ln1.bias');
    vec(g + 'attn_norm_2.weight', b + 'ln2.weight');
    vec(g + 'attn_norm_2.bias', b + 'ln2.bias');
    add(g + 'time_mix_lerp_fused.weight', [C, 1, 1, 6], 'F32', LERP_ORDER.map((m, slot) => ({ key: `${b}att.x_${m}`, slot })));
    for (const p of ['w', 'a', 'v', 'g']) {
      // Layer 0 never uses v0/v1/v2: llama.cpp wants a0/a1/a2 under their names.
      const src = i === 0 && p === 'v' ? 'a' : p;
      const D = { w: cfg.Dw, a: cfg.Da, v: cfg.Dv, g: cfg.Dg }[src];
      if (p !== 'g') vec(`${g}time_mix_${p}0.weight`, `${b}att.${src}0`);
      add(`${g}time_mix_${p}1.weight`, [C, D], 'F32', [{ key: `${b}att.${src}1`, transpose: true }]);
      add(`${g}time_mix_${p}2.weight`, [D, C], 'F32', [{ key: `${b}att.${src}2`, transpose: true }]);
    }
    vec(g + 'time_mix_k_k.weight', b + 'att.k_k');
    vec(g + 'time_mix_k_a.weight', b + 'att.k_a');
    vec(g + 'time_mix_r_k.weight', b + 'att.r_k');
    for (const m of ['key', 'value', 'receptance']) add(`${g}time_mix_${m}.weight`, [C, C], type, [{ key: `${b}att.${m}.weight` }]);
    vec(g + 'time_mix_ln.weight', b + 'att.ln_x.weight');
    vec(g + 'time_mix_ln.bias', b + 'att.ln_x.bias');
    add(g + 'time_mix_output.weight', [C, C], type, [{ key: `${b}att.output.weight` }]);
    vec(g + 'channel_mix_lerp_k.weight', b + 'ffn.x_k');
    add(g + 'channel_mix_key.weight', [C, F], type, [{ key: `${b}ffn.key.weight` }]);
    add(g + 'channel_mix_value.weight', [F, C], type, [{ key: `${b}ffn.value.weight` }]);
  }
  vec('output_norm.weight', 'ln_out.weight');
  vec('output_norm.bias', 'ln_out.bias');
  add('output.weight', [C, V], type, [{ key: 'head.weight' }]);
  return plan;
}

// Python's repr() of a bytes object without the b'' around it: what llama.cpp's
// converter stores as a World token's text (llama.cpp undoes it when loading).
export function pythonBytesRepr(bytes) {
  const useDouble = bytes.includes(0x27) && !bytes.includes(0x22);
  let s = '';
  for (const c of bytes) {
    if (c === 0x5c) s += '\\\\';
    else if (c === 0x27 && !useDouble) s += "\\'";
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c < 0x20 || c >= 0x7f) s += '\\x' + c.toString(16).padStart(2, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

// One Python literal of the vocabulary file ('str', "str", b'bytes' with escapes) as bytes.
function pythonLiteralBytes(lit, line) {
  const isBytes = lit[0] === 'b';
  const body = lit.slice(isBytes ? 2 : 1, -1);
  const q = lit[isBytes ? 1 : 0];
  if ((q !== "'" && q !== '"') || lit[lit.length - 1] !== q) throw new Error(`vocabulary line ${line}: not a Python string literal`);
  const out = [];
  const pushCp = (cp) => {
    if (isBytes) out.push(cp);
    else out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
  };
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i);
    if (cp !== 0x5c) {
      pushCp(cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[i + 1];
    const simple = { n: 10, t: 9, r: 13, '\\': 92, "'": 39, '"': 34, a: 7, b: 8, f: 12, v: 11, 0: 0 };
    if (e === 'x' || e === 'u' || e === 'U') {
      const n = { x: 2, u: 4, U: 8 }[e];
      pushCp(parseInt(body.slice(i + 2, i + 2 + n), 16));
      i += 2 + n;
    } else if (e in simple) {
      out.push(simple[e]);
      i += 2;
    } else {
      throw new Error(`vocabulary line ${line}: unknown escape \\${e}`);
    }
  }
  return Uint8Array.from(out);
}

/** The token byte strings of a World vocabulary file's text, by id (index 0 unused). */
export function parseWorldVocab(text) {
  const tokens = [];
  let line = 0;
  for (const raw of text.split('\n')) {
    line++;
    const l = raw.replace(/\r$/, '');
    if (!l.trim()) continue;
    const first = l.indexOf(' '), last = l.lastIndexOf(' ');
    const id = Number(l.slice(0, first));
    const bytes = pythonLiteralBytes(l.slice(first + 1, last), line);
    if (bytes.length !== Number(l.slice(last + 1))) throw new Error(`vocabulary line ${line}: length disagrees with the token`);
    tokens[id] = bytes;
  }
  return tokens;
}

// GGUF metadata encoding.
class Encoder {
  constructor() { this.parts = []; this.size = 0; }
  push(buf) { this.parts.push(buf); this.size += buf.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s) { const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s); this.u64(b.length); this.push(b); }
  kv(key, type, value) {
    this.str(key);
    this.u32(type);
    this.value(type, value);
  }
  value(type, v) {
    switch (type) {
      case T.U32: return this.u32(v);
      case T.I32: return this.i32(v);
      case T.F32: return this.f32(v);
      case T.STRING: return this.str(v);
    }
    throw new Error(`internal: metadata type ${type}`);
  }
  array(key, elemType, values) {
    this.str(key);
    this.u32(T.ARRAY);
    this.u32(elemType);
    this.u64(values.length);
    for (const v of values) this.value(elemType, v);
  }
  bytes() { return Buffer.concat(this.parts, this.size); }
}

const alignUp = (n, a) => Math.ceil(n / a) * a;
const numel = (shape) => shape.reduce((a, b) => a * b, 1);

/**
 * Writes an RWKV-7 GGUF file.
 *   file:      the path to write
 *   config:    {L, C, N, F, V, Dw, Da, Dv, Dg} (ggufConfigOf() gives it from shapes)
 *   tensors:   iterable or async iterable of {name, shape, data: Float32Array} under our
 *              checkpoint keys and shapes, in any order; a 2-D tensor may come in pieces
 *              of whole rows, each with `row` (its first row) and data of those rows
 *   type:      the type of the large matrices: 'F16' (default), 'BF16', 'F32', 'Q8_0',
 *              'Q4_0', or a k-quant ('Q4_K', 'Q5_K', 'Q6_K'; C and F multiples of 256)
 *   vocab:     the text of the World vocabulary file (rwkv_vocab_v20230424.txt), or none
 *   alignment: of the tensor data (general.alignment; written when not the default 32)
 *   name:      general.name
 * Layer 0's att.v0/v1/v2, when given, are skipped (unused). Throws naming a tensor that
 * is unknown, of the wrong shape, given twice, or missing at the end (the file is then
 * removed). Returns {bytes, tensors} (file size, GGUF tensor count).
 */
export async function writeGguf(file, { config, tensors, type = 'F16', vocab, alignment = DEFAULT_ALIGNMENT, name }) {
  if (!['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'].includes(type)) throw new Error(`GGUF writer: unsupported type ${type}`);
  if (!(alignment > 0 && alignment % 8 === 0)) throw new Error(`GGUF writer: alignment ${alignment} is not a positive multiple of 8`);
  const cfg = { ...config, H: config.C / config.N };
  const plan = ggufPlan(cfg, type);

  const md = new Encoder();
  let kvCount = 0;
  const kv = (key, t, v) => { md.kv(key, t, v); kvCount++; };
  kv('general.architecture', T.STRING, 'rwkv7');
  if (name) kv('general.name', T.STRING, name);
  kv('general.file_type', T.U32, FILE_TYPE[type]);
  if (alignment !== DEFAULT_ALIGNMENT) kv('general.alignment', T.U32, alignment);
  kv('rwkv7.context_length', T.U32, 1048576);
  kv('rwkv7.embedding_length', T.U32, cfg.C);
  kv('rwkv7.block_count', T.U32, cfg.L);
  kv('rwkv7.attention.layer_norm_epsilon', T.F32, 1e-5);
  kv('rwkv7.wkv.head_size', T.U32, cfg.N);
  kv('rwkv7.attention.decay_lora_rank', T.U32, cfg.Dw);
  kv('rwkv7.attention.iclr_lora_rank', T.U32, cfg.Da);
  kv('rwkv7.attention.value_residual_mix_lora_rank', T.U32, cfg.Dv);
  kv('rwkv7.attention.gate_lora_rank', T.U32, cfg.Dg);
  kv('rwkv7.feed_forward_length', T.U32, cfg.F);
  kv('rwkv7.attention.head_count', T.U32, 0);
  if (vocab != null) {
    const words = parseWorldVocab(typeof vocab === 'string' ? vocab : Buffer.from(vocab).toString('utf8'));
    const texts = ['<s>'], types = [TOKEN_CONTROL];
    for (let id = 1; id < words.length; id++) {
      if (!words[id]) throw new Error(`vocabulary: id ${id} is missing (ids must run from 1 without gaps)`);
      texts.push(pythonBytesRepr(words[id]));
      types.push(TOKEN_NORMAL);
    }
    if (texts.length > cfg.V) throw new Error(`vocabulary has ${texts.length} tokens but the model only ${cfg.V}`);
    for (let id = texts.length; id < cfg.V; id++) texts.push(`[PAD${id}]`), types.push(TOKEN_UNUSED);
    kv('tokenizer.ggml.model', T.STRING, 'rwkv');
    md.array('tokenizer.ggml.tokens', T.STRING, texts), kvCount++;
    md.array('tokenizer.ggml.token_type', T.I32, types), kvCount++;
    kv('tokenizer.ggml.bos_token_id', T.U32, 0);
    kv('tokenizer.ggml.eos_token_id', T.U32, 0);
    kv('tokenizer.ggml.eot_token_id', T.U32, 261);
    kv('tokenizer.chat_template', T.STRING, 'rwkv-world');
  }

  // Tensor infos, with offsets from the start of the aligned data section.
  const info = new Encoder();
  let dataSize = 0;
  for (const p of plan) {
    p.rowBytes = rowBytes(p.type, p.ne[0]);
    p.bytes = p.rowBytes * (numel(p.ne) / p.ne[0]);
    p.offset = dataSize;
    dataSize = alignUp(dataSize + p.bytes, alignment);
    info.str(p.gguf);
    info.u32(p.ne.length);
    for (const n of p.ne) info.u64(n);
    info.u32(GGML_TYPES[p.type].id);
    info.u64(p.offset);
  }
  const head = new Encoder();
  head.push(Buffer.from('GGUF'));
  head.u32(GGUF_VERSION);
  head.u64(plan.length);
  head.u64(kvCount);
  const header = Buffer.concat([head.bytes(), md.bytes(), info.bytes()]);
  const dataStart = alignUp(header.length, alignment);

  // Where each checkpoint key goes: [{entry, slot, transpose}] (layer 0's a0/a1/a2 twice).
  const dests = new Map();
  for (const p of plan)
    for (const s of p.sources) {
      if (!dests.has(s.key)) dests.set(s.key, []);
      dests.get(s.key).push({ p, slot: s.slot ?? 0, transpose: !!s.transpose });
    }
  const expectShape = (key) => {
    const { C, H, N, F, V } = cfg;
    const D = { w: cfg.Dw, a: cfg.Da, v: cfg.Dv, g: cfg.Dg };
    const leaf = key.replace(/^blocks\.\d+\./, '');
    let m;
    if (key === 'emb.weight' || key === 'head.weight') return [V, C];
    if (leaf === 'att.r_k') return [H, N];
    if ((m = /^att\.([wavg])1$/.exec(leaf))) return [C, D[m[1]]];
    if ((m = /^att\.([wavg])2$/.exec(leaf))) return [D[m[1]], C];
    if (/^att\.(receptance|key|value|output)\.weight$/.test(leaf)) return [C, C];
    if (leaf === 'ffn.key.weight') return [F, C];
    if (leaf === 'ffn.value.weight') return [C, F];
    return [C];  // vectors: any shape of C elements once squeezed
  };
  const squeeze = (s) => s.filter((d) => d !== 1);
  const rowsLeft = new Map();
  for (const key of dests.keys()) rowsLeft.set(key, expectShape(key).length === 2 ? expectShape(key)[0] : 1);

  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, header, 0, header.length, 0);
    const write = (buf, at) => fs.writeSync(fd, buf, 0, buf.length, dataStart + at);
    for await (const t of tensors) {
      const key = t.name;
      if (/^blocks\.0\.att\.v[012]$/.test(key)) continue;
      const to = dests.get(key);
      if (!to) throw new Error(`GGUF writer: unknown tensor '${key}'`);
      const shape = expectShape(key);
      const piece = t.row !== undefined;
      const rows = shape.length === 2 ? (piece ? t.data.length / shape[1] : shape[0]) : 1;
      const given = piece ? [rows, ...t.shape.slice(1)] : t.shape;
      const ok = shape.length === 2 ? given.length === 2 && given[0] === rows && given[1] === shape[1] && Number.isInteger(rows)
        : numel(t.shape) === shape[0] && squeeze(t.shape).length <= (key.endsWith('att.r_k') ? 2 : 1);
      if (!ok || t.data.length !== rows * (shape[1] ?? shape[0]) || (piece && (t.row < 0 || t.row + rows > shape[0])))
        throw new Error(`GGUF writer: tensor '${key}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
      if (rowsLeft.get(key) < rows) throw new Error(`GGUF writer: tensor '${key}' given twice`);
      rowsLeft.set(key, rowsLeft.get(key) - rows);
      const first = piece ? t.row : 0;
      for (const { p, slot, transpose } of to) {
        if (transpose) {  // (R, K) -> stored (K, R): small LoRA matrices, always whole, F32
          if (piece) throw new Error(`GGUF writer: tensor '${key}' must come whole`);
          const [R, K] = shape, out = new Float32Array(R * K);
          for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) out[k * R + r] = t.data[r * K + k];
          const buf = Buffer.alloc(p.bytes);
          for (let k = 0; k < K; k++) quantizeRow(p.type, out.subarray(k * R, (k + 1) * R), buf.subarray(k * p.rowBytes, (k + 1) * p.rowBytes));
          write(buf, p.offset);
        } else if (p.ne.length === 2) {  // a matrix, or rows of one
          const buf = Buffer.alloc(rows * p.rowBytes), cols = shape[1];
          for (let r = 0; r < rows; r++) quantizeRow(p.type, t.data.subarray(r * cols, (r + 1) * cols), buf.subarray(r * p.rowBytes, (r + 1) * p.rowBytes));
          write(buf, p.offset + first * p.rowBytes);
        } else {  // a vector (r_k flattened), or one slot of the fused mixes
          const buf = Buffer.alloc(p.rowBytes);
          quantizeRow(p.type, t.data instanceof Float32Array ? t.data : Float32Array.from(t.data), buf);
          write(buf, p.offset + slot * p.rowBytes);
        }
      }
    }
    for (const [key, left] of rowsLeft)
      if (left > 0) throw new Error(`GGUF writer: tensor '${key}' was not given${left < (expectShape(key)[0] ?? 1) ? ` whole (${left} rows missing)` : ''}`);
    const end = dataStart + dataSize;
    fs.ftruncateSync(fd, end);
    fs.closeSync(fd);
    return { bytes: end, tensors: plan.length };
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
}
