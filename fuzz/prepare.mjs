#!/usr/bin/env node
// prepare.mjs — seed corpora, dictionaries and libFuzzer options for the fuzz harnesses.
//
//   node fuzz/prepare.mjs OUT_DIR [name...]        (scripts/fuzz.sh runs it; OUT_DIR = build/fuzz)
//
// For every harness fuzz/fuzz_<name>.cpp (all of them when no name is given) it reads the
// `// FUZZ_<KEY> value...` lines at the top of the source:
//   FUZZ_MAX_LEN n        largest input (libFuzzer -max_len); seed files above it are skipped
//   FUZZ_DICTS a b ...    fuzz/dict/a.dict, b.dict ... merged into OUT_DIR/dict/<name>.dict
//   FUZZ_SEEDS kind ...   seed kinds generated below: pth safetensors rwkv pkl zip vocab gguf
// and writes
//   OUT_DIR/corpus/<name>/seed-*   the seeds (rewritten on every call; libFuzzer adds its
//                                  own finds to the same folder under SHA-1 names)
//   OUT_DIR/dict/<name>.dict       the merged dictionary, when FUZZ_DICTS names any
//   OUT_DIR/options/<name>         libFuzzer flags for the harness, one per line
// Files in fuzz/seeds/<name>/ (hand-made seeds for any harness) are copied in as well.
//
// Seeds come from real files: the fixtures (build/fixtures, or $RWKV_FIXTURE_DIR), the
// models in ../shared/reference/models (or $RWKV_REFERENCE_DIR/models) when present, the
// data.pkl of every .pth among them (extracted here, no Python), tiny models written with
// the fixture writers of scripts/make-fixtures.mjs, and a few hand-made inputs.
// Nothing here is committed: OUT_DIR is under build/.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const DEFAULT_MAX_LEN = 1 << 20;

// ------------------------------------------------------------------ byte helpers

const b = (...parts) =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const u16 = (n) => { const x = Buffer.alloc(2); x.writeUInt16LE(n); return x; };
const u32 = (n) => { const x = Buffer.alloc(4); x.writeUInt32LE(n >>> 0); return x; };
const u64 = (n) => { const x = Buffer.alloc(8); x.writeBigUInt64LE(BigInt(n)); return x; };
const utf8 = (s) => Buffer.from(s, 'utf8');

// ------------------------------------------------------------------ zip

// Payload of every stored entry of a zip archive (ZIP64 included): Map name -> Buffer.
// Throws on anything unexpected; callers skip such files.
function unzip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new Error('no end-of-central-directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let dirOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || dirOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw new Error('ZIP64 locator missing');
    const z64 = Number(buf.readBigUInt64LE(loc + 8));
    if (buf.readUInt32LE(z64) !== 0x06064b50) throw new Error('bad ZIP64 record');
    count = Number(buf.readBigUInt64LE(z64 + 32));
    dirOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const out = new Map();
  let p = dirOffset;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    const method = buf.readUInt16LE(p + 10);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28), extraLen = buf.readUInt16LE(p + 30), commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = buf.readUInt16LE(e), len = buf.readUInt16LE(e + 2);
      let f = e + 4;
      if (id === 1) {
        if (size === 0xffffffff) { size = Number(buf.readBigUInt64LE(f)); f += 8; }
        if (buf.readUInt32LE(p + 20) === 0xffffffff) f += 8;
        if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(f));
      }
      e += 4 + len;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (method !== 0) continue;
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    out.set(name, buf.subarray(start, start + size));
  }
  return out;
}

// A zip archive of stored entries [{name, data}]. opts: zip64 (ZIP64 end records and
// 0xFFFFFFFF sizes/offsets resolved through ZIP64 extra fields), comment, method.
function zip(entries, opts = {}) {
  const parts = [];
  const central = [];
  let at = 0;
  const push = (buf) => { parts.push(buf); at += buf.length; };
  for (const { name, data } of entries) {
    const n = utf8(name);
    central.push({ n, size: data.length, offset: at });
    push(b(u32(0x04034b50), u16(20), u16(0), u16(opts.method ?? 0), u16(0), u16(0), u32(0), u32(data.length), u32(data.length),
      u16(n.length), u16(0), n, data));
  }
  const dirOffset = at;
  for (const e of central) {
    const extra = opts.zip64 ? b(u16(1), u16(24), u64(e.size), u64(e.size), u64(e.offset)) : Buffer.alloc(0);
    const big = opts.zip64 ? 0xffffffff : null;
    push(b(u32(0x02014b50), u16(45), u16(45), u16(0), u16(opts.method ?? 0), u16(0), u16(0), u32(0),
      u32(big ?? e.size), u32(big ?? e.size), u16(e.n.length), u16(extra.length), u16(0), u16(0), u16(0), u32(0),
      u32(big ?? e.offset), e.n, extra));
  }
  const dirSize = at - dirOffset;
  const comment = utf8(opts.comment ?? '');
  if (opts.zip64) {
    const z64 = at;
    push(b(u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(central.length), u64(central.length),
      u64(dirSize), u64(dirOffset)));
    push(b(u32(0x07064b50), u32(0), u64(z64), u32(1)));
    push(b(u32(0x06054b50), u16(0), u16(0), u16(0xffff), u16(0xffff), u32(0xffffffff), u32(0xffffffff), u16(comment.length), comment));
  } else {
    push(b(u32(0x06054b50), u16(0), u16(0), u16(central.length), u16(central.length), u32(dirSize), u32(dirOffset),
      u16(comment.length), comment));
  }
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ pickle

const P = {
  proto: (v) => b(0x80, v), stop: '.', mark: '(', none: 'N', true_: b(0x88), false_: b(0x89),
  int: (n) => (n >= 0 && n < 256 ? b('K', n) : n >= 0 && n < 65536 ? b('M', u16(n)) : b('J', u32(n))),
  long1: (n) => { const x = Buffer.alloc(8); x.writeBigInt64LE(BigInt(n)); return b(0x8a, 8, x); },
  float: (f) => { const x = Buffer.alloc(8); x.writeDoubleBE(f); return b('G', x); },
  str: (s) => b('X', u32(utf8(s).length), utf8(s)),
  sstr: (s) => b(0x8c, utf8(s).length, utf8(s)),
  global: (m, n) => b('c', m, '\n', n, '\n'),
  put: (i) => b('q', i), get: (i) => b('h', i),
};

// torch.save's pickle of one tensor: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
function pickledTensor({ storage = 'FloatStorage', key = '0', numel, offset = 0, shape, stride }) {
  return b(
    P.global('torch._utils', '_rebuild_tensor_v2'), P.mark,
    P.mark, P.str('storage'), P.global('torch', storage), P.str(key), P.str('cpu'), P.int(numel), 't', 'Q',
    P.int(offset), P.mark, ...shape.map(P.int), 't', P.mark, ...stride.map(P.int), 't',
    P.false_, P.global('collections', 'OrderedDict'), ')', 'R', 't', 'R');
}

function handPickles() {
  const t22 = pickledTensor({ numel: 4, shape: [2, 2], stride: [2, 1] });
  return {
    'empty-dict': b(P.proto(2), '}', P.put(0), '.'),
    'empty-ordereddict': b(P.proto(2), P.global('collections', 'OrderedDict'), P.put(0), ')', 'R', P.put(1), '.'),
    'one-tensor': b(P.proto(2), P.global('collections', 'OrderedDict'), P.put(0), ')', 'R', P.put(1),
      P.mark, P.str('w'), t22, P.put(2), 'u', '.'),
    'two-tensors-memo': b(P.proto(2), '}', P.put(0), P.mark,
      P.str('a'), pickledTensor({ storage: 'BFloat16Storage', numel: 6, shape: [3], stride: [1] }), P.put(1),
      P.str('b'), pickledTensor({ storage: 'BFloat16Storage', numel: 6, offset: 3, shape: [3, 1], stride: [1, 1] }),
      'u', P.str('c'), P.get(1), 's', '.'),
    'half-parameter': b(P.proto(2), '}', P.str('p'), P.global('torch._utils', '_rebuild_parameter'), P.mark,
      pickledTensor({ storage: 'HalfStorage', numel: 2, shape: [2], stride: [1] }), P.true_,
      P.global('collections', 'OrderedDict'), ')', 'R', 't', 'R', 's', '.'),
    // Protocol 4 forms: FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, NEWOBJ, TUPLE1..3,
    // LONG1, BINFLOAT, lists and non-tensor metadata values (skipped by the reader).
    'protocol4': (() => {
      const body = b(P.sstr('collections'), 0x94, P.sstr('OrderedDict'), 0x94, 0x93, 0x94, ')', 0x81, 0x94,
        P.sstr('meta'), ']', P.mark, P.int(1), P.long1(-2), P.float(0.5), P.none, 'e', 's',
        P.sstr('pair'), P.int(1), P.int(2), 0x86, 's',
        P.sstr('triple'), 'C', 2, 'ab', 'U', 1, 'c', 'B', u32(1), 'd', 0x87, 's',
        P.sstr('dict'), P.mark, P.sstr('k'), P.false_, 'd', 's',
        P.sstr('w'), P.sstr('torch._utils'), P.sstr('_rebuild_tensor_v2'), 0x93, P.mark, P.mark,
        P.sstr('storage'), P.sstr('torch'), P.sstr('FloatStorage'), 0x93, P.sstr('0'), P.sstr('cpu'), P.int(1), 't', 'Q',
        P.int(0), ')', ')', P.false_, '}', 't', 'R', 0x94, 's', '2', '0', '.');
      return b(P.proto(4), 0x95, u64(body.length), body);
    })(),
    'unsupported-global': b(P.proto(2), P.global('os', 'system'), P.str('true'), 0x85, 'R', '.'),
    'double-storage': b(P.proto(2), '}', P.str('d'), pickledTensor({ storage: 'DoubleStorage', numel: 1, shape: [], stride: [] }), 's', '.'),
  };
}

// ------------------------------------------------------------------ safetensors

function safetensors(header, data = Buffer.alloc(0)) {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  return b(u64(Buffer.byteLength(json)), utf8(json), data);
}

function handSafetensors() {
  return {
    'empty.safetensors': safetensors('{}'),
    'metadata-only.safetensors': safetensors({ __metadata__: { format: 'pt' } }),
    'one-f32.safetensors': safetensors({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, Buffer.alloc(16, 0x3f)),
    'mixed.safetensors': safetensors(
      '{"__metadata__":{"a":"b"},"s\\u00e9\\n":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},' +
      '"e":{"dtype":"F16","shape":[0,3],"data_offsets":[2,2]},"h":{"dtype":"F16","shape":[1,1,2],"data_offsets":[2,6]},' +
      '"x":{"dtype":"F32","shape":[1],"data_offsets":[8,12],"extra":[true,false,null,[1,-2],{}]}}',
      b(Buffer.alloc(8, 0x3c), Buffer.from([0, 0, 0x80, 0x3f]))),
  };
}

// ------------------------------------------------------------------ tiny models

// RWKV-7 models a few KB large, written with the fixture writers (same layouts as the
// real files: torch-style and classic zips, OrderedDict and dict, shared storages).
async function tinyModels() {
  const out = {};
  let fx;
  try {
    fx = await import(pathToFileURL(path.join(root, 'scripts', 'make-fixtures.mjs')).href);
  } catch (err) {
    console.error(`prepare: no tiny models (scripts/make-fixtures.mjs: ${err.message})`);
    return out;
  }
  const configs = [
    { name: 'tiny-L1-C4-H2.bf16', seed: 0xf0220001, dtype: 'bf16', L: 1, C: 4, N: 2, F: 8, V: 5, Dw: 2, Da: 2, Dv: 2, Dg: 2, block0V: false },
    { name: 'tiny-L2-C4-H1.fp16', seed: 0xf0220002, dtype: 'f16', L: 2, C: 4, N: 4, F: 4, V: 3, Dw: 1, Da: 2, Dv: 3, Dg: 1, block0V: true },
    { name: 'tiny-L2-C8-H2.f32', seed: 0xf0220003, dtype: 'f32', L: 2, C: 8, N: 4, F: 16, V: 7, Dw: 2, Da: 2, Dv: 2, Dg: 2, block0V: false },
  ];
  // .rwkv files (our own format) of the models above, and of one wide enough (C = 32) for
  // the quantized types, with and without an embedded vocabulary.
  const rwkvSeeds = (cfg, tensors) => {
    if (typeof fx.writeRwkv !== 'function') return;
    out[`${cfg.name}.rwkv`] = fx.writeRwkv(tensors, { dtype: cfg.dtype });
    if (cfg.C % 32 === 0)
      for (const quant of ['Q8_0', 'Q4_0'])
        out[`${cfg.name}.${quant}.rwkv`] = fx.writeRwkv(tensors, { dtype: 'f32', quant, vocab: fx.fixtureVocab(cfg.V), metadata: { source: 'tiny' } });
  };
  configs.push({ name: 'tiny-L2-C32-H2.bf16', seed: 0xf0220004, dtype: 'bf16', L: 2, C: 32, N: 16, F: 32, V: 260, Dw: 2, Da: 2, Dv: 2, Dg: 2, block0V: false });
  for (const cfg of configs) {
    try {
      const { tensors } = fx.buildFixtureModel(cfg);
      if (cfg.dtype === 'f16') {
        const shareWith = {};
        for (let i = 0; i < cfg.L; i++) shareWith[`blocks.${i}.ln1.bias`] = `blocks.${i}.ln1.weight`;
        out[`${cfg.name}.pth`] = fx.writePth(tensors, { dtype: 'f16', dir: 'tiny', container: 'dict', style: 'classic', shareWith, batch: 7 });
      } else {
        out[`${cfg.name}.pth`] = fx.writePth(tensors, { dtype: cfg.dtype, dir: 'archive', container: 'OrderedDict', style: 'torch' });
      }
      out[`${cfg.name}.safetensors`] = fx.writeSafetensors(tensors, cfg.dtype, { format: 'pt' });
      rwkvSeeds(cfg, tensors);
    } catch (err) {
      console.error(`prepare: tiny model ${cfg.name} skipped: ${err.message}`);
    }
  }
  // The C32 model converted by the C++ writer, as `node js/cli.mjs convert` writes it
  // (kept, int8 with a vocabulary, q4), when the wasm core is built.
  const src = out['tiny-L2-C32-H2.bf16.pth'];
  if (src) {
    try {
      const { load } = await import(pathToFileURL(path.join(root, 'js', 'rwkv.mjs')).href);
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rwkv-prepare-'));
      try {
        for (const quant of ['', 'int8', 'q4']) {
          const model = await load(new Uint8Array(src), { quant: quant || undefined, threads: 1 });
          try {
            const file = path.join(tmp, 'out.rwkv');
            const vocab = quant === 'int8' ? new TextEncoder().encode(fx.fixtureVocab(260)) : undefined;
            await model.save(file, { vocab, metadata: { source: 'tiny-L2-C32-H2.bf16.pth' } });
            out[`tiny-L2-C32-H2.converted${quant ? `.${quant}` : ''}.rwkv`] = fs.readFileSync(file);
          } finally {
            await model.dispose();
          }
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    } catch (err) {
      console.error(`prepare: no seeds converted by the core (${err.message})`);
    }
  }
  return out;
}

// ------------------------------------------------------------------ sources

function listFiles(dir, ext) {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

const fixtureDir = process.env.RWKV_FIXTURE_DIR || path.join(root, 'build', 'fixtures');
const referenceDir = process.env.RWKV_REFERENCE_DIR || path.join(root, '..', 'shared', 'reference');
const realFiles = (ext) => [...listFiles(fixtureDir, ext), ...listFiles(path.join(referenceDir, 'models'), ext)];

// Seeds of one kind: [{name, bytes}] (bytes: Buffer, or a path read lazily when small enough).
async function seedsOf(kind, maxLen, tiny) {
  const fromFiles = (files, prefix) => files.flatMap((f) => {
    const size = fs.statSync(f).size;
    return size <= maxLen ? [{ name: `${prefix}-${path.basename(f)}`, bytes: () => fs.readFileSync(f) }] : [];
  });
  const fromMap = (map, prefix) => Object.entries(map).map(([n, bytes]) => ({ name: `${prefix}-${n}`, bytes: () => bytes }));
  switch (kind) {
    case 'pth':
      return [...fromFiles(realFiles('.pth'), 'file'), ...fromMap(Object.fromEntries(Object.entries(tiny).filter(([n]) => n.endsWith('.pth'))), 'tiny'),
        ...fromMap({ 'empty-state-dict.pth': zip([{ name: 'archive/data.pkl', data: handPickles()['empty-ordereddict'] }]),
          'one-tensor.pth': zip([{ name: 'archive/data.pkl', data: handPickles()['one-tensor'] }, { name: 'archive/data/0', data: Buffer.alloc(16, 0x3f) }], { zip64: true }) }, 'hand')];
    case 'safetensors':
      return [...fromFiles(realFiles('.safetensors'), 'file'),
        ...fromMap(Object.fromEntries(Object.entries(tiny).filter(([n]) => n.endsWith('.safetensors'))), 'tiny'),
        ...fromMap(handSafetensors(), 'hand')];
    case 'rwkv':
      return [...fromFiles(realFiles('.rwkv'), 'file'),
        ...fromMap(Object.fromEntries(Object.entries(tiny).filter(([n]) => n.endsWith('.rwkv'))), 'tiny')];
    case 'pkl': {
      // data.pkl of every .pth, whatever its size (the pickle is small).
      const out = [];
      const pths = [...realFiles('.pth').map((f) => [path.basename(f), () => fs.readFileSync(f)]),
        ...Object.entries(tiny).filter(([n]) => n.endsWith('.pth')).map(([n, bytes]) => [n, () => bytes])];
      for (const [name, read] of pths) {
        try {
          for (const [entry, data] of unzip(read()))
            if (entry.endsWith('data.pkl') && data.length <= maxLen) out.push({ name: `pkl-${name}`, bytes: () => data });
        } catch (err) {
          if (!/^bad-/.test(name)) console.error(`prepare: ${name}: ${err.message}`);
        }
      }
      return [...out, ...fromMap(Object.fromEntries(Object.entries(handPickles()).map(([n, v]) => [`${n}.pkl`, v])), 'hand')];
    }
    case 'zip':
      return fromMap({
        'empty.zip': zip([]),
        'one-entry.zip': zip([{ name: 'a/data.pkl', data: utf8('hi') }]),
        'comment.zip': zip([{ name: 'x', data: utf8('') }, { name: 'y', data: utf8('yy') }], { comment: 'a comment' }),
        'zip64.zip': zip([{ name: 'archive/data/0', data: Buffer.alloc(8, 1) }], { zip64: true }),
        'deflated.zip': zip([{ name: 'z', data: utf8('zz') }], { method: 8 }),
      }, 'hand');
    case 'gguf':  // written by tests/reference/make-gguf-fixtures.mjs
      return fromFiles(realFiles('.gguf'), 'file');
    case 'vocab':
      return [...fromFiles(listFiles(fixtureDir, '.txt'), 'file'), ...fromFiles(listFiles(path.join(referenceDir, 'vocab'), '.txt'), 'file'),
        ...fromMap({ 'small.txt': utf8("1 '\\x00' 1\n2 b'\\xff' 1\n3 'ab' 2\n4 \"it's\" 4\n5 '\\u4e2d' 3\n6 b'\\xe4\\xb8' 2\n") }, 'hand')];
    default:
      throw new Error(`unknown seed kind '${kind}' (known: pth safetensors rwkv pkl zip vocab gguf)`);
  }
}

// ------------------------------------------------------------------ main

function harnessTags(name) {
  const src = fs.readFileSync(path.join(here, `fuzz_${name}.cpp`), 'utf8');
  const tags = {};
  for (const m of src.matchAll(/^\/\/\s*FUZZ_([A-Z_]+)\s+(.*?)\s*$/gm)) tags[m[1]] = m[2].split(/\s+/).filter(Boolean);
  return tags;
}

async function main(outDir, names) {
  if (!outDir) {
    console.error('usage: node fuzz/prepare.mjs OUT_DIR [name...]');
    process.exit(2);
  }
  if (names.length === 0)
    names = fs.readdirSync(here).map((f) => /^fuzz_(.+)\.cpp$/.exec(f)?.[1]).filter(Boolean).sort();
  const tiny = await tinyModels();
  for (const name of names) {
    if (!fs.existsSync(path.join(here, `fuzz_${name}.cpp`))) throw new Error(`no harness fuzz/fuzz_${name}.cpp`);
    const tags = harnessTags(name);
    const maxLen = Number(tags.MAX_LEN?.[0] ?? DEFAULT_MAX_LEN);
    if (!Number.isInteger(maxLen) || maxLen <= 0) throw new Error(`fuzz_${name}.cpp: bad FUZZ_MAX_LEN`);

    const corpus = path.join(outDir, 'corpus', name);
    fs.mkdirSync(corpus, { recursive: true });
    for (const f of fs.readdirSync(corpus)) if (f.startsWith('seed-')) fs.rmSync(path.join(corpus, f));
    const seen = new Set();
    let count = 0, bytes = 0;
    const add = (seedName, data) => {
      if (data.length > maxLen) return;
      const hash = crypto.createHash('sha1').update(data).digest('hex');
      if (seen.has(hash)) return;
      seen.add(hash);
      fs.writeFileSync(path.join(corpus, `seed-${seedName.replace(/[^A-Za-z0-9._-]/g, '_')}`), data);
      count++;
      bytes += data.length;
    };
    for (const kind of tags.SEEDS ?? [])
      for (const s of await seedsOf(kind, maxLen, tiny)) add(s.name, s.bytes());
    const own = path.join(here, 'seeds', name);
    if (fs.existsSync(own))
      for (const f of fs.readdirSync(own).sort())
        if (fs.statSync(path.join(own, f)).isFile()) add(`own-${f}`, fs.readFileSync(path.join(own, f)));

    const options = [`-max_len=${maxLen}`];
    if (tags.DICTS?.length) {
      const dict = path.join(outDir, 'dict', `${name}.dict`);
      fs.mkdirSync(path.dirname(dict), { recursive: true });
      fs.writeFileSync(dict, tags.DICTS.map((d) => fs.readFileSync(path.join(here, 'dict', `${d}.dict`), 'utf8')).join('\n'));
      options.push(`-dict=${dict}`);
    }
    fs.mkdirSync(path.join(outDir, 'options'), { recursive: true });
    fs.writeFileSync(path.join(outDir, 'options', name), options.join('\n') + '\n');
    console.log(`prepare: ${name}: ${count} seeds (${(bytes / 1048576).toFixed(1)} MB), ${options.join(' ')}`);
  }
}

main(process.argv[2], process.argv.slice(3)).catch((err) => {
  console.error(`prepare: ${err.message}`);
  process.exit(1);
});
