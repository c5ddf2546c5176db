// Writes PyTorch checkpoints (.pth) as torch.save does: a zip of STORED entries holding
// data.pkl (a protocol-2 pickle of the state dict, tensors as _rebuild_tensor_v2 calls on
// persistent storage ids) and one entry per storage. Written from the formats'
// descriptions (no torch): for the test fixtures (scripts/make-fixtures.mjs) and the
// benchmark's random models (js/bench/random-model.mjs), which stream to disk tensor by
// tensor and chunk by chunk, so a 6 GB model never sits in memory.
import { closeSync, openSync, writeSync } from 'node:fs';

// ---------------------------------------------------------------------------
// Float conversions (round to nearest even, like torch's .to(dtype))
// ---------------------------------------------------------------------------

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

export function f32ToBf16Bits(x) {
  cvtF32[0] = x;
  const b = cvtU32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40; // NaN stays NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToF16Bits(x) {
  cvtF32[0] = x;
  const b = cvtU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit-1 mantissa into place, round to even
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++; // may carry into exponent: correct
  return sign | r;
}

/** Bytes per element, safetensors name and torch storage class of the dtypes written. */
export const DTYPES = {
  bf16: { size: 2, st: 'BF16', torch: 'BFloat16Storage' },
  f16: { size: 2, st: 'F16', torch: 'HalfStorage' },
  f32: { size: 4, st: 'F32', torch: 'FloatStorage' },
};

/** Encodes a Float32Array as little-endian bytes of `dtype`. */
export function encodeTensor(data, dtype) {
  const bytes = new Uint8Array(data.length * DTYPES[dtype].size);
  if (dtype === 'bf16') {
    // The hot path of the random models (billions of values): typed arrays, not DataView.
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < data.length; i++) {
      const b = bits[i];
      dv.setUint16(2 * i, (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff, true);
    }
    return bytes;
  }
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) {
    if (dtype === 'f16') dv.setUint16(2 * i, f32ToF16Bits(data[i]), true);
    else dv.setFloat32(4 * i, data[i], true);
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// CRC-32 and ZIP (STORED entries, torch.save layout)
// ---------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes`, continuing from `crc` (the CRC of the bytes before them). */
export function crc32(bytes, crc = 0) {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Little-endian byte builder. */
export class Bytes {
  constructor() { this.parts = []; this.length = 0; }
  raw(u8) { this.parts.push(u8); this.length += u8.length; return this; }
  u8(...v) { return this.raw(Uint8Array.from(v)); }
  u16(v) { return this.u8(v & 0xff, (v >>> 8) & 0xff); }
  u32(v) { return this.u8(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); }
  i32(v) { return this.u32(v >>> 0); }
  u64(v) { return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32)); }
  str(s) { return this.raw(new TextEncoder().encode(s)); }
  finish() { return Buffer.concat(this.parts); }
}

/** A sink writing straight to a file: the same calls as Bytes, `length` is the position. */
class FileSink extends Bytes {
  constructor(fd) { super(); this.fd = fd; this.pending = 0; }
  raw(u8) {
    this.parts.push(u8);
    this.length += u8.length;
    this.pending += u8.length;
    if (this.pending >= 1 << 22) this.flush();
    return this;
  }
  flush() {
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    for (let at = 0; at < all.length;) at += writeSync(this.fd, all, at, all.length - at);
    this.parts = [];
    this.pending = 0;
  }
}

const ZIP32_MAX = 0xffffffff;

/**
 * Writes a ZIP archive of STORED entries [{name, size, chunks: () => Iterable<Uint8Array>}]
 * into `out` (a Bytes or a file sink).
 * Every local header carries torch's "FB" extra field padding the payload to 64 bytes.
 * style 'torch'  : like PyTorchStreamWriter (miniz): flags 0x0808, CRC/sizes 0 in the local
 *                  header + a data descriptor after the data, zip64 end records + classic
 *                  EOCD; entries past 4 GB get a zip64 extra field with their offset.
 * style 'classic': flags 0, CRC/sizes in the local header (chunks() is called twice), no
 *                  descriptor, classic EOCD only.
 */
function writeZipTo(out, entries, style) {
  const torch = style === 'torch';
  const central = [];
  for (const { name, size, chunks } of entries) {
    if (size >= ZIP32_MAX) throw new Error(`zip: entry ${name} of ${size} bytes needs zip64 sizes (not written)`);
    if (!torch && out.length + size >= ZIP32_MAX) throw new Error('zip: a classic archive cannot pass 4 GB');
    const nameBytes = new TextEncoder().encode(name);
    let crc = 0;
    if (!torch) for (const c of chunks()) crc = crc32(c, crc);
    const offset = out.length;
    // payload start without padding = header(30) + name + extra header(4)
    const start = offset + 30 + nameBytes.length + 4;
    const pad = (64 - (start % 64)) % 64;
    out.u32(0x04034b50).u16(torch ? 0 : 20).u16(torch ? 0x0808 : 0).u16(0) // sig, version, flags, STORED
      .u16(0).u16(0) // DOS time, date
      .u32(torch ? 0 : crc).u32(torch ? 0 : size).u32(torch ? 0 : size)
      .u16(nameBytes.length).u16(4 + pad).raw(nameBytes)
      .u16(0x4246).u16(pad).raw(new Uint8Array(pad).fill(0x5a)); // 'FB' extra, 'Z' * pad
    let written = 0;
    for (const c of chunks()) {
      if (torch) crc = crc32(c, crc);
      out.raw(c);
      written += c.length;
    }
    if (written !== size) throw new Error(`zip: entry ${name} has ${written} bytes, ${size} announced`);
    if (torch) out.u32(0x08074b50).u32(crc).u32(size).u32(size);
    central.push({ nameBytes, crc, size, offset });
  }
  const cdOffset = out.length;
  for (const e of central) {
    const far = e.offset >= ZIP32_MAX; // the offset moves into a zip64 extra field
    out.u32(0x02014b50).u16(torch ? 0 : 20).u16(torch ? 0 : 20).u16(torch ? 0x0808 : 0).u16(0)
      .u16(0).u16(0).u32(e.crc).u32(e.size).u32(e.size)
      .u16(e.nameBytes.length).u16(far ? 12 : 0).u16(0) // extra, comment lengths
      .u16(0).u16(0).u32(0).u32(far ? ZIP32_MAX : e.offset) // disk, internal attr, external attr, local offset
      .raw(e.nameBytes);
    if (far) out.u16(0x0001).u16(8).u64(e.offset);
  }
  const cdSize = out.length - cdOffset;
  const n = central.length;
  if (torch) {
    const z64 = out.length;
    out.u32(0x06064b50).u64(44).u16(0x031e).u16(45).u32(0).u32(0).u64(n).u64(n).u64(cdSize).u64(cdOffset);
    out.u32(0x07064b50).u32(0).u64(z64).u32(1);
  }
  out.u32(0x06054b50).u16(0).u16(0).u16(n).u16(n).u32(cdSize).u32(Math.min(cdOffset, ZIP32_MAX)).u16(0);
}

/** A ZIP archive of STORED entries [{name, data: Uint8Array}] as a Buffer (see writeZipTo). */
export function writeZip(entries, style = 'torch') {
  const out = new Bytes();
  writeZipTo(out, entries.map(({ name, data }) => ({ name, size: data.length, chunks: () => [data] })), style);
  return out.finish();
}

// ---------------------------------------------------------------------------
// Pickle (protocol 2) writer, mimicking Python's pickle.Pickler as torch.save uses it
// ---------------------------------------------------------------------------

export const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_TUPLE: 0x29, EMPTY_DICT: 0x7d, SETITEM: 0x73, SETITEMS: 0x75, REDUCE: 0x52,
  GLOBAL: 0x63, BINPERSID: 0x51, BINUNICODE: 0x58, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d,
  NEWFALSE: 0x89, NEWTRUE: 0x88, NONE: 0x4e, BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68,
  LONG_BINGET: 0x6a, BUILD: 0x62, LONG1: 0x8a, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d,
  MEMOIZE: 0x94, FRAME: 0x95, EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65, BINFLOAT: 0x47,
};

class Pickler {
  constructor() { this.b = new Bytes(); this.memo = new Map(); this.next = 0; }
  op(o) { this.b.u8(o); }
  /** Memoizes the object just written under identity `id` (BINPUT / LONG_BINPUT). */
  put(id) {
    const n = this.next++;
    if (id !== undefined) this.memo.set(id, n);
    if (n < 256) this.b.u8(OP.BINPUT, n); else this.b.u8(OP.LONG_BINPUT).u32(n);
  }
  /** Emits BINGET for an already memoized identity; returns false when not memoized. */
  get(id) {
    if (!this.memo.has(id)) return false;
    const n = this.memo.get(id);
    if (n < 256) this.b.u8(OP.BINGET, n); else this.b.u8(OP.LONG_BINGET).u32(n);
    return true;
  }
  int(v) {
    if (v >= 0 && v <= 0xff) this.b.u8(OP.BININT1, v);
    else if (v >= 0 && v <= 0xffff) this.b.u8(OP.BININT2).u16(v);
    else if (v >= -0x80000000 && v <= 0x7fffffff) this.b.u8(OP.BININT).i32(v);
    else throw new Error('int out of range');
  }
  /** A str; `id` names an object identity shared between uses (else a fresh object). */
  str(s, id = Symbol(s)) {
    if (this.get(id)) return;
    const u = new TextEncoder().encode(s);
    this.b.u8(OP.BINUNICODE).u32(u.length).raw(u);
    this.put(id);
  }
  global(mod, name) {
    const id = `global:${mod}.${name}`;
    if (this.get(id)) return;
    this.b.u8(OP.GLOBAL).str(`${mod}\n${name}\n`);
    this.put(id);
  }
  /** A tuple whose items are written by the callbacks in `items`. */
  tuple(items) {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE); // not memoized
    if (items.length <= 3) {
      items.forEach((f) => f());
      this.op([OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1]);
    } else {
      this.op(OP.MARK);
      items.forEach((f) => f());
      this.op(OP.TUPLE);
    }
    this.put();
  }
  /** collections.OrderedDict() as pickled by Python: GLOBAL, EMPTY_TUPLE, REDUCE. */
  orderedDict() {
    this.global('collections', 'OrderedDict');
    this.op(OP.EMPTY_TUPLE);
    this.op(OP.REDUCE);
    this.put();
  }
  /** Python's _batch_setitems: MARK k v ... SETITEMS per batch, SETITEM for a batch of one. */
  setitems(items, batch) {
    for (let i = 0; i < items.length; i += batch) {
      const chunk = items.slice(i, i + batch);
      if (chunk.length > 1) this.op(OP.MARK);
      for (const [k, v] of chunk) { k(); v(); }
      this.op(chunk.length > 1 ? OP.SETITEMS : OP.SETITEM);
    }
  }
  finish() { this.op(OP.STOP); return this.b.finish(); }
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

// The zip entries of a state dict (see writePth), the storages' bytes produced on demand.
function pthEntries(tensors, opts) {
  const { dtype = 'bf16', dir = 'archive', container = 'OrderedDict', style = 'torch', shareWith = {}, batch = 1000 } = opts;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  // A tensor's values as Float32Array chunks: its `data`, or what its `chunks()` yields.
  const valuesOf = (t) => (t.data ? [t.data] : t.chunks());
  // Storages: one per tensor, except views which append to their base's storage.
  const storageOf = new Map(); // tensor name -> { storage, offset }
  const storages = [];
  for (const t of tensors) {
    if (shareWith[t.name]) continue;
    const s = { parts: [t], numel: numel(t.shape), key: null };
    storages.push(s);
    storageOf.set(t.name, { storage: s, offset: 0 });
  }
  for (const [view, base] of Object.entries(shareWith)) {
    const s = storageOf.get(base).storage;
    storageOf.set(view, { storage: s, offset: s.numel });
    s.parts.push(byName.get(view));
    s.numel += numel(byName.get(view).shape);
  }

  const p = new Pickler();
  p.b.u8(OP.PROTO, 2);
  if (container === 'OrderedDict') p.orderedDict(); else { p.op(OP.EMPTY_DICT); p.put(); }
  let nextKey = 0;
  const items = tensors.map((t) => [
    () => p.str(t.name),
    () => {
      const { storage, offset } = storageOf.get(t.name);
      if (storage.key === null) storage.key = String(nextKey++); // torch numbers storages on first use
      const stride = t.shape.map((_, i) => numel(t.shape.slice(i + 1)));
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.tuple([
        () => { // persistent id ('storage', StorageType, key, location, numel)
          p.tuple([
            () => p.str('storage', 'str:storage'),
            () => p.global('torch', DTYPES[dtype].torch),
            () => p.str(storage.key, storage),
            () => p.str('cpu', 'str:cpu'),
            () => p.int(storage.numel),
          ]);
          p.op(OP.BINPERSID);
        },
        () => p.int(offset),
        () => p.tuple(t.shape.map((d) => () => p.int(d))),
        () => p.tuple(stride.map((d) => () => p.int(d))),
        () => p.op(OP.NEWFALSE), // requires_grad
        () => p.orderedDict(), // backward_hooks
      ]);
      p.op(OP.REDUCE);
      p.put();
    },
  ]);
  p.setitems(items, batch);
  const pkl = p.finish();

  const data = storages.map((s) => ({
    key: s.key,
    size: s.numel * DTYPES[dtype].size,
    * chunks() { for (const t of s.parts) for (const c of valuesOf(t)) yield encodeTensor(c, dtype); },
  }));
  if (style === 'torch') data.sort((a, b) => Number(a.key) - Number(b.key));
  else data.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const small = (name, bytes) => ({ name, size: bytes.length, chunks: () => [bytes] });
  const te = (s) => new TextEncoder().encode(s);
  const entries = [small(`${dir}/data.pkl`, pkl)];
  if (style === 'torch') entries.push(small(`${dir}/.format_version`, te('1')));
  entries.push(small(`${dir}/byteorder`, te('little')));
  for (const d of data) entries.push({ name: `${dir}/data/${d.key}`, size: d.size, chunks: () => d.chunks() });
  entries.push(small(`${dir}/version`, te('3\n')));
  if (style === 'torch') entries.push(small(`${dir}/.data/serialization_id`, te('1234567890123456789012345678901234567890')));
  return entries;
}

/**
 * Serialises a state dict like torch.save(..., _use_new_zipfile_serialization=True).
 *
 * tensors : [{name, shape, data: Float32Array}] in the order they go into the dict; instead
 *           of data, chunks(): an iterable of Float32Array pieces in row-major order
 *           (writePthFile calls it once per tensor, when its storage is written).
 * opts.dtype      'bf16' | 'f16' | 'f32' (storage type)
 * opts.dir        folder name inside the zip (torch uses the file's base name; default 'archive')
 * opts.container  'OrderedDict' (state_dict()) or 'dict'
 * opts.style      'torch' (torch 2.x zip: .format_version, byteorder, numeric data order,
 *                 version, .data/serialization_id) or 'classic' (data.pkl, byteorder,
 *                 lexicographic data order, version; plain local headers)
 * opts.shareWith  { viewName: baseName }: viewName is stored in baseName's storage right
 *                 after baseName's elements (non-zero storage_offset, shared storage)
 * opts.batch      pickle SETITEMS batch size (Python uses 1000)
 * Returns a Buffer with the .pth bytes.
 */
export function writePth(tensors, opts = {}) {
  const out = new Bytes();
  writeZipTo(out, pthEntries(tensors, opts), opts.style ?? 'torch');
  return out.finish();
}

/**
 * The first `n` bytes writePth would write (the zip's first local header and data.pkl,
 * which describes every tensor, come first), without making the rest: a large model's
 * header for tests: the tensors' chunks() are read only as far as `n` bytes go.
 */
export function pthHead(tensors, n, opts = {}) {
  const out = new Bytes();
  const enough = new Error('enough bytes');
  const raw = out.raw.bind(out);
  out.raw = (u8) => {
    raw(u8);
    if (out.length >= n) throw enough;
    return out;
  };
  try {
    writeZipTo(out, pthEntries(tensors, opts), 'torch');
  } catch (err) {
    if (err !== enough) throw err;
  }
  return out.finish().subarray(0, n);
}

/**
 * writePth straight into `file`, chunk by chunk: memory holds one chunk, not the model
 * (style 'torch' only, the one that needs no CRC before the data). Returns the file size.
 */
export function writePthFile(file, tensors, opts = {}) {
  if ((opts.style ?? 'torch') !== 'torch') throw new Error("writePthFile: only style 'torch' streams");
  const fd = openSync(file, 'w');
  try {
    const out = new FileSink(fd);
    writeZipTo(out, pthEntries(tensors, opts), 'torch');
    out.flush();
    return out.length;
  } finally {
    closeSync(fd);
  }
}
