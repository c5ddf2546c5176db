// Saved session states (docs/state-format.md): a 32-byte header, then the state's floats
// (little-endian float32) in the core's layout (docs/computation.md#the-state).
//   0  8 bytes  magic "RWKVST\0\1"
//   8  uint32   format version (1)
//  12  uint32   n_layer
//  16  uint32   n_embd
//  20  uint32   n_head
//  24  uint32   head_size
//  28  uint32   number of floats that follow
// The codec is plain JS, shared by the engine (saveState/restoreState) and the CLI.
export const STATE_MAGIC = 'RWKVST\u0000\u0001';
export const STATE_VERSION = 1;
export const STATE_HEADER_BYTES = 32;

/** The saved-state bytes of `floats` (a Float32Array) for a model of config `c` (ModelConfig). */
export function encodeState(c, floats) {
  const out = new ArrayBuffer(STATE_HEADER_BYTES + floats.byteLength);
  const head = new DataView(out);
  for (let i = 0; i < 8; ++i) head.setUint8(i, STATE_MAGIC.charCodeAt(i));
  [STATE_VERSION, c.nLayer, c.nEmbd, c.nHead, c.headSize, floats.length].forEach((v, i) => head.setUint32(8 + 4 * i, v, true));
  new Float32Array(out, STATE_HEADER_BYTES).set(floats);
  return out;
}

/**
 * The floats of saved-state bytes (ArrayBuffer or a view), checked against the model of
 * config `c`. Throws an Error saying what does not fit (not a state, another version,
 * another model shape, truncated).
 */
export function decodeState(c, bytes) {
  const buf = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (buf.byteLength < STATE_HEADER_BYTES) throw new Error(`a saved state has at least ${STATE_HEADER_BYTES} bytes; got ${buf.byteLength}`);
  const head = new DataView(buf);
  const magic = String.fromCharCode(...new Uint8Array(buf, 0, 8));
  if (magic !== STATE_MAGIC) throw new Error('these bytes are not a saved rwkv-web state');
  const [version, nLayer, nEmbd, nHead, headSize, count] = [0, 1, 2, 3, 4, 5].map((i) => head.getUint32(8 + 4 * i, true));
  if (version !== STATE_VERSION) throw new Error(`saved state version ${version} is not supported (expected ${STATE_VERSION})`);
  if (nLayer !== c.nLayer || nEmbd !== c.nEmbd || nHead !== c.nHead || headSize !== c.headSize)
    throw new Error(`the saved state is for a model with ${nLayer} layers, n_embd ${nEmbd}, ${nHead} heads of ${headSize}; this model has ${c.nLayer}, ${c.nEmbd}, ${c.nHead} of ${c.headSize}`);
  if (count !== c.stateSize || buf.byteLength !== STATE_HEADER_BYTES + 4 * count)
    throw new Error('the saved state is truncated or has extra bytes');
  return new Float32Array(buf, STATE_HEADER_BYTES, count);
}
