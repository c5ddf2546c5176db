// Random RWKV-7 models of the published shapes, in the official .pth layout (bf16, the
// official key order), for the benchmark: every tool runs the same weights, written in
// each tool's format. The file is streamed to disk tensor by tensor (the 2.9B shape is a
// 5.9 GB file). The values are deterministic (one PRNG stream per tensor, seeded by the
// model's seed and the tensor's name) and scaled so the model stays numerically sane:
// LayerNorm weights near 1, matrices U(-a, a) with a = sqrt(3 / fan-in) (unit variance
// out), the output projections at half that, so logits stay finite and sampling stays
// spread. The test fixtures (scripts/make-fixtures.mjs) are built by the same rules.
import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { SHAPES } from '../catalog.mjs';
import { writePthFile } from '../formats/pth-writer.mjs';

export { SHAPES };

/** The full config {name, seed, L, C, N, F, V, Dw, Da, Dv, Dg, block0V} of a published shape. */
export function shapeConfig(shape) {
  const s = SHAPES[shape];
  if (!s) throw new Error(`unknown shape '${shape}': use ${Object.keys(SHAPES).join(', ')}`);
  return { name: `rwkv7-${shape}-shape`, seed: 0x0b0b0b01, N: 64, F: 4 * s.C, V: 65536, block0V: true, ...s };
}

/** mulberry32: returns a function giving uniform floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a 32-bit hash of a string (gives every tensor its own seed). */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The official key list in the official order, with shapes, for a config
 * {L, C, N, F, V, Dw, Da, Dv, Dg, block0V}. Returns [{name, shape}].
 */
export function officialKeys(cfg) {
  const { L, C, N, F, V, Dw, Da, Dv, Dg } = cfg;
  const H = C / N;
  const keys = [['emb.weight', [V, C]]];
  for (let i = 0; i < L; i++) {
    const b = `blocks.${i}.`;
    if (i === 0) keys.push([b + 'ln0.weight', [C]], [b + 'ln0.bias', [C]]);
    keys.push([b + 'ln1.weight', [C]], [b + 'ln1.bias', [C]], [b + 'ln2.weight', [C]], [b + 'ln2.bias', [C]]);
    for (const m of ['x_r', 'x_w', 'x_k', 'x_v', 'x_a', 'x_g']) keys.push([b + 'att.' + m, [1, 1, C]]);
    keys.push([b + 'att.w0', [1, 1, C]], [b + 'att.w1', [C, Dw]], [b + 'att.w2', [Dw, C]]);
    keys.push([b + 'att.a0', [1, 1, C]], [b + 'att.a1', [C, Da]], [b + 'att.a2', [Da, C]]);
    if (i > 0 || cfg.block0V) keys.push([b + 'att.v0', [1, 1, C]], [b + 'att.v1', [C, Dv]], [b + 'att.v2', [Dv, C]]);
    keys.push([b + 'att.g1', [C, Dg]], [b + 'att.g2', [Dg, C]]);
    keys.push([b + 'att.k_k', [1, 1, C]], [b + 'att.k_a', [1, 1, C]], [b + 'att.r_k', [H, N]]);
    for (const m of ['receptance', 'key', 'value', 'output']) keys.push([b + `att.${m}.weight`, [C, C]]);
    keys.push([b + 'att.ln_x.weight', [C]], [b + 'att.ln_x.bias', [C]]);
    keys.push([b + 'ffn.x_k', [1, 1, C]], [b + 'ffn.key.weight', [F, C]], [b + 'ffn.value.weight', [C, F]]);
  }
  keys.push(['ln_out.weight', [C]], ['ln_out.bias', [C]], ['head.weight', [V, C]]);
  return keys.map(([name, shape]) => ({ name, shape }));
}

/** Uniform range [lo, hi] the values of tensor `name` of `shape` are drawn from. */
function initRange(name, shape) {
  const leaf = name.replace(/^blocks\.\d+\./, '');
  const fanIn = (s) => Math.sqrt(3 / s); // U(-a, a) with std 1/sqrt(s)
  if (leaf === 'emb.weight') return [-1, 1];
  if (/(^|\.)ln(0|1|2|_out|_x)\.weight$/.test(leaf)) return [0.8, 1.2]; // LayerNorm / GroupNorm
  if (/\.bias$/.test(leaf)) return [-0.1, 0.1];
  if (/^(att|ffn)\.x_[rwkvag]$/.test(leaf)) return [0, 1]; // token-shift mix factors
  switch (leaf) {
    case 'att.w0': return [-0.5, 0.5];
    case 'att.a0': return [-0.3, 0.3];
    case 'att.v0': return [-0.5, 0.5];
    case 'att.k_k': return [0.8, 1.0];
    case 'att.k_a': return [0.9, 1.1];
    case 'att.r_k': return [-0.1, 0.1];
    case 'att.w1': case 'att.a1': case 'att.v1': case 'att.g1': // (C, D): x @ w1
      return [-fanIn(shape[0]), fanIn(shape[0])];
    case 'att.w2': return [-fanIn(shape[0]), fanIn(shape[0])]; // (Dw, C): tanh(..) @ w2
    case 'att.a2': case 'att.v2': case 'att.g2':
      return [-0.5 * fanIn(shape[0]), 0.5 * fanIn(shape[0])];
    case 'att.receptance.weight': case 'att.key.weight': case 'att.value.weight':
    case 'ffn.key.weight': case 'head.weight': // [out, in]
      return [-fanIn(shape[1]), fanIn(shape[1])];
    case 'att.output.weight': case 'ffn.value.weight':
      return [-0.5 * fanIn(shape[1]), 0.5 * fanIn(shape[1])];
  }
  throw new Error(`no init rule for ${name}`);
}

/**
 * The values of one tensor as Float32Array chunks of at most `chunk` elements, in
 * row-major order (float32, not yet rounded to the file's dtype). The same values
 * whatever the chunk size, the key order or which optional keys exist.
 */
export function* tensorValues(cfg, name, shape, chunk = 1 << 20) {
  const rand = mulberry32(cfg.seed ^ fnv1a(name));
  const [lo, hi] = initRange(name, shape);
  const total = shape.reduce((a, b) => a * b, 1);
  for (let at = 0; at < total; at += chunk) {
    const part = new Float32Array(Math.min(chunk, total - at));
    for (let i = 0; i < part.length; i++) part[i] = lo + (hi - lo) * rand();
    yield part;
  }
}

/**
 * Writes the random model of `cfg` (shapeConfig(...) or a config of the same fields) to
 * `file` as a bf16 .pth, streamed (through FILE.partial, renamed when complete, so an
 * interrupted run leaves no truncated model behind). Returns {file, bytes}.
 */
export function writeRandomModel(file, cfg) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tensors = officialKeys(cfg).map(({ name, shape }) => ({ name, shape, chunks: () => tensorValues(cfg, name, shape) }));
  const partial = `${file}.partial`;
  const bytes = writePthFile(partial, tensors, { dtype: 'bf16', dir: cfg.name ?? 'archive' });
  renameSync(partial, file);
  return { file, bytes };
}

/** `data` rounded to bfloat16 in place (round to nearest even): the values the .pth holds. */
function roundBf16(data) {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16) << 16;
  return data;
}

/**
 * A World-format vocabulary of the 256 single bytes (ids 1..256): enough for llama.cpp to
 * load a GGUF (the other ids become unused tokens); the benchmark feeds token ids.
 */
export function byteVocab() {
  const lines = [];
  for (let b = 0; b < 256; b++) lines.push(`${b + 1} b'\\x${b.toString(16).padStart(2, '0')}' 1`);
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the random model of `cfg` as a GGUF file for llama.cpp (js/formats/gguf-writer.mjs),
 * the large matrices in `type` ('F16', 'Q8_0', 'Q4_0', ...): the values of the bf16 .pth
 * (F16 holds them exactly), streamed in pieces of rows. Returns {file, bytes}.
 */
export async function writeRandomGguf(file, cfg, type) {
  const { writeGguf } = await import('../formats/gguf-writer.mjs');
  mkdirSync(path.dirname(file), { recursive: true });
  function* tensors() {
    for (const { name, shape } of officialKeys(cfg)) {
      const count = shape.reduce((a, b) => a * b, 1);
      // The large matrices in pieces of whole rows (the LoRAs, transposed, come whole).
      const rows = count > 1 << 21 ? Math.floor((1 << 20) / shape[1]) : 0;
      let row = 0;
      for (const part of tensorValues(cfg, name, shape, rows ? rows * shape[1] : count)) {
        yield rows ? { name, shape, data: roundBf16(part), row } : { name, shape, data: roundBf16(part) };
        row += rows;
      }
    }
  }
  const partial = `${file}.partial`;
  const { bytes } = await writeGguf(partial, { config: cfg, tensors: tensors(), type, vocab: byteVocab(), name: `${cfg.name} ${type}` });
  renameSync(partial, file);
  return { file, bytes };
}
