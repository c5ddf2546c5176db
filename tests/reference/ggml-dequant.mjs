// Independent decoders of ggml's block types, written from ggml's reference
// dequantize_row_* (ggml-quants.c), for the tests: float32 arithmetic as ggml does it
// (Math.fround after each operation), nothing shared with the writer (js/formats/) or
// the C++ reader (src/formats/gguf.cpp).

const fr = Math.fround;

function half(dv, o) {
  const h = dv.getUint16(o, true);
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 scale bytes at s.
function scaleMin(b, s, j) {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

const decoders = {
  F32: { block: 1, bytes: 4, f: (dv, b, o, y) => { y[0] = dv.getFloat32(o, true); } },
  F16: { block: 1, bytes: 2, f: (dv, b, o, y) => { y[0] = half(dv, o); } },
  BF16: { block: 1, bytes: 2, f: (dv, b, o, y) => { y[0] = new Float32Array(new Uint32Array([dv.getUint16(o, true) << 16]).buffer)[0]; } },
  Q8_0: {
    block: 32, bytes: 34,
    f: (dv, b, o, y) => {
      const d = half(dv, o);
      for (let j = 0; j < 32; j++) y[j] = fr(dv.getInt8(o + 2 + j) * d);
    },
  },
  Q4_0: {
    block: 32, bytes: 18,
    f: (dv, b, o, y) => {
      const d = half(dv, o);
      for (let j = 0; j < 16; j++) {
        y[j] = fr(((b[o + 2 + j] & 0xf) - 8) * d);
        y[j + 16] = fr(((b[o + 2 + j] >> 4) - 8) * d);
      }
    },
  },
  Q4_1: {
    block: 32, bytes: 20,
    f: (dv, b, o, y) => {
      const d = half(dv, o), m = half(dv, o + 2);
      for (let j = 0; j < 16; j++) {
        y[j] = fr(fr((b[o + 4 + j] & 0xf) * d) + m);
        y[j + 16] = fr(fr((b[o + 4 + j] >> 4) * d) + m);
      }
    },
  },
  Q5_0: {
    block: 32, bytes: 22,
    f: (dv, b, o, y) => {
      const d = half(dv, o), qh = dv.getUint32(o + 2, true);
      for (let j = 0; j < 16; j++) {
        const h0 = ((qh >>> j) << 4) & 0x10, h1 = (qh >>> (j + 12)) & 0x10;
        y[j] = fr((((b[o + 6 + j] & 0xf) | h0) - 16) * d);
        y[j + 16] = fr((((b[o + 6 + j] >> 4) | h1) - 16) * d);
      }
    },
  },
  Q5_1: {
    block: 32, bytes: 24,
    f: (dv, b, o, y) => {
      const d = half(dv, o), m = half(dv, o + 2), qh = dv.getUint32(o + 4, true);
      for (let j = 0; j < 16; j++) {
        const h0 = ((qh >>> j) << 4) & 0x10, h1 = (qh >>> (j + 12)) & 0x10;
        y[j] = fr(fr(((b[o + 8 + j] & 0xf) | h0) * d) + m);
        y[j + 16] = fr(fr(((b[o + 8 + j] >> 4) | h1) * d) + m);
      }
    },
  },
  Q8_1: {
    block: 32, bytes: 36,
    f: (dv, b, o, y) => {
      const d = half(dv, o);
      for (let j = 0; j < 32; j++) y[j] = fr(dv.getInt8(o + 4 + j) * d);
    },
  },
  Q2_K: {
    block: 256, bytes: 84,
    f: (dv, b, o, y) => {
      const d = half(dv, o + 80), min = half(dv, o + 82);
      let q = o + 16, is = 0, n = 0;
      for (let k = 0; k < 256; k += 128) {
        for (let shift = 0; shift < 8; shift += 2) {
          for (const off of [0, 16]) {
            const sc = b[o + is++];
            const dl = fr(d * (sc & 0xf)), ml = fr(min * (sc >> 4));
            for (let l = 0; l < 16; l++) y[n++] = fr(fr(dl * ((b[q + off + l] >> shift) & 3)) - ml);
          }
        }
        q += 32;
      }
    },
  },
  Q3_K: {
    block: 256, bytes: 110,
    f: (dv, b, o, y) => {
      const d = half(dv, o + 108);
      // The 16 6-bit scales: low 4 bits from bytes 0-7 (low then high nibbles), high 2
      // bits from bytes 8-11 (2 bits per scale, 4 scales a byte, in groups).
      const sc = new Int8Array(16);
      for (let j = 0; j < 16; j++) {
        const lo = j < 8 ? b[o + 96 + j] & 0xf : b[o + 96 + j - 8] >> 4;
        const hi = (b[o + 96 + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3;
        sc[j] = (lo | (hi << 4)) - 32;
      }
      let q = o + 32, is = 0, n = 0, m = 1;
      for (let k = 0; k < 256; k += 128) {
        for (let shift = 0; shift < 8; shift += 2) {
          for (const off of [0, 16]) {
            const dl = fr(d * sc[is++]);
            for (let l = 0; l < 16; l++)
              y[n++] = fr(dl * (((b[q + off + l] >> shift) & 3) - (b[o + off + l] & m ? 0 : 4)));
          }
          m <<= 1;
        }
        q += 32;
      }
    },
  },
  Q4_K: {
    block: 256, bytes: 144,
    f: (dv, b, o, y) => {
      const d = half(dv, o), min = half(dv, o + 2);
      let q = o + 16, is = 0, n = 0;
      for (let j = 0; j < 256; j += 64) {
        let [sc, m] = scaleMin(b, o + 4, is);
        const d1 = fr(d * sc), m1 = fr(min * m);
        [sc, m] = scaleMin(b, o + 4, is + 1);
        const d2 = fr(d * sc), m2 = fr(min * m);
        for (let l = 0; l < 32; l++) y[n++] = fr(fr(d1 * (b[q + l] & 0xf)) - m1);
        for (let l = 0; l < 32; l++) y[n++] = fr(fr(d2 * (b[q + l] >> 4)) - m2);
        q += 32, is += 2;
      }
    },
  },
  Q5_K: {
    block: 256, bytes: 176,
    f: (dv, b, o, y) => {
      const d = half(dv, o), min = half(dv, o + 2);
      const qh = o + 16;
      let ql = o + 48, is = 0, n = 0, u1 = 1, u2 = 2;
      for (let j = 0; j < 256; j += 64) {
        let [sc, m] = scaleMin(b, o + 4, is);
        const d1 = fr(d * sc), m1 = fr(min * m);
        [sc, m] = scaleMin(b, o + 4, is + 1);
        const d2 = fr(d * sc), m2 = fr(min * m);
        for (let l = 0; l < 32; l++) y[n++] = fr(fr(d1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0))) - m1);
        for (let l = 0; l < 32; l++) y[n++] = fr(fr(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - m2);
        ql += 32, is += 2, u1 <<= 2, u2 <<= 2;
      }
    },
  },
  Q6_K: {
    block: 256, bytes: 210,
    f: (dv, b, o, y) => {
      const d = half(dv, o + 208);
      let ql = o, qh = o + 128, sc = o + 192, n = 0;
      for (let k = 0; k < 256; k += 128) {
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
          const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
          const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
          const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
          const s = (i) => dv.getInt8(sc + is + i);
          y[n + l] = fr(fr(d * s(0)) * q1);
          y[n + l + 32] = fr(fr(d * s(2)) * q2);
          y[n + l + 64] = fr(fr(d * s(4)) * q3);
          y[n + l + 96] = fr(fr(d * s(6)) * q4);
        }
        n += 128, ql += 64, qh += 32, sc += 8;
      }
    },
  },
  Q8_K: {
    block: 256, bytes: 292,
    f: (dv, b, o, y) => {
      const d = dv.getFloat32(o, true);
      for (let j = 0; j < 256; j++) y[j] = fr(d * dv.getInt8(o + 4 + j));
    },
  },
};

/** Decodes `count` values of ggml type `type` from bytes (a Uint8Array) to a Float32Array. */
export function dequantize(type, bytes, count) {
  const t = decoders[type];
  if (!t) throw new Error(`no reference decoder for ${type}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0, o = 0; i < count; i += t.block, o += t.bytes) t.f(dv, bytes, o, out.subarray(i, i + t.block));
  return out;
}

/** Bytes of `count` values of ggml type `type`. */
export const typeBytes = (type, count) => (count / decoders[type].block) * decoders[type].bytes;
