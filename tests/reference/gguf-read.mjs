// A small GGUF parser for the tests, written from the GGUF specification (ggml's
// docs/gguf.md): header, metadata of every value type, tensor infos, alignment. It
// shares nothing with the writer (js/formats/gguf-writer.mjs) or the C++ reader.

const TYPE_NAMES = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 30: 'BF16' };

/** Parses a GGUF file held in a Buffer: {version, metadata: Map, tensors: [{name, ne, type, offset, data}], alignment, dataStart}. */
export function readGguf(buf) {
  let p = 0;
  const u32 = () => { const v = buf.readUInt32LE(p); p += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(p)); p += 8; return v; };
  const str = () => { const n = u64(); const s = buf.subarray(p, p + n).toString('utf8'); p += n; return s; };
  if (buf.subarray(0, 4).toString('latin1') !== 'GGUF') throw new Error('not a GGUF file');
  p = 4;
  const version = u32();
  const nTensors = u64(), nKv = u64();
  const value = (t) => {
    switch (t) {
      case 0: return buf.readUInt8(p++);
      case 1: return buf.readInt8(p++);
      case 2: { const v = buf.readUInt16LE(p); p += 2; return v; }
      case 3: { const v = buf.readInt16LE(p); p += 2; return v; }
      case 4: return u32();
      case 5: { const v = buf.readInt32LE(p); p += 4; return v; }
      case 6: { const v = buf.readFloatLE(p); p += 4; return v; }
      case 7: return buf.readUInt8(p++) !== 0;
      case 8: return str();
      case 9: { const et = u32(), n = u64(); const a = []; for (let i = 0; i < n; i++) a.push(value(et)); return a; }
      case 10: return u64();
      case 11: { const v = Number(buf.readBigInt64LE(p)); p += 8; return v; }
      case 12: { const v = buf.readDoubleLE(p); p += 8; return v; }
    }
    throw new Error(`metadata type ${t}`);
  };
  const metadata = new Map();
  const types = new Map();
  for (let i = 0; i < nKv; i++) {
    const k = str(), t = u32();
    types.set(k, t);
    metadata.set(k, value(t));
  }
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str(), nd = u32(), ne = [];
    for (let d = 0; d < nd; d++) ne.push(u64());
    const type = u32();
    tensors.push({ name, ne, type: TYPE_NAMES[type] ?? type, offset: u64() });
  }
  const alignment = metadata.get('general.alignment') ?? 32;
  const dataStart = Math.ceil(p / alignment) * alignment;
  for (const t of tensors) t.data = buf.subarray(dataStart + t.offset);
  return { version, metadata, types, tensors, alignment, dataStart, headerEnd: p };
}

/** Undoes llama.cpp's RWKV token escaping (llama_unescape_rwkv_token): \t \n \r \xNN, \c -> c. */
export function unescapeRwkvToken(s) {
  const out = [];
  const b = Buffer.from(s, 'utf8');
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== 0x5c) { out.push(b[i]); continue; }
    const c = String.fromCharCode(b[++i]);
    if (c === 'x') { out.push(parseInt(String.fromCharCode(b[i + 1], b[i + 2]), 16)); i += 2; }
    else out.push({ t: 9, n: 10, r: 13 }[c] ?? b[i]);
  }
  return Buffer.from(out);
}
