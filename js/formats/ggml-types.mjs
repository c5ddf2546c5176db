// ggml's tensor types as GGUF files number them, and the row quantizers of the types a
// GGUF writer emits (F32, F16, BF16, Q8_0, Q4_0 and the k-quants Q4_K, Q5_K, Q6_K),
// each writing the bytes ggml's reference code (ggml-quants.c, quantize_row_*_ref)
// writes for the same float32 row: the same block layout, the same arithmetic in float32,
// the same rounding. The k-quant quantizers are a simpler search than ggml's
// make_qkx2_quants/make_qx_quants (one scale per sub-block from its range, no refinement),
// so their bytes differ from ggml's, but they are valid blocks of the ggml layout, which
// is all a fixture needs. docs/format.md#gguf describes the layouts.

/** ggml_type numbers, block size (values) and block bytes, by name. */
export const GGML_TYPES = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q4_0: { id: 2, block: 32, bytes: 18 },   // f16 d, 16 bytes of nibbles
  Q4_1: { id: 3, block: 32, bytes: 20 },   // f16 d, f16 m, 16 bytes of nibbles
  Q5_0: { id: 6, block: 32, bytes: 22 },   // f16 d, 4 bytes of high bits, 16 bytes of nibbles
  Q5_1: { id: 7, block: 32, bytes: 24 },   // f16 d, f16 m, 4 bytes of high bits, 16 bytes
  Q8_0: { id: 8, block: 32, bytes: 34 },   // f16 d, 32 int8
  Q8_1: { id: 9, block: 32, bytes: 36 },
  Q2_K: { id: 10, block: 256, bytes: 84 },
  Q3_K: { id: 11, block: 256, bytes: 110 },
  Q4_K: { id: 12, block: 256, bytes: 144 },  // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
  Q5_K: { id: 13, block: 256, bytes: 176 },  // as Q4_K plus 32 bytes of high bits
  Q6_K: { id: 14, block: 256, bytes: 210 },  // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
  Q8_K: { id: 15, block: 256, bytes: 292 },  // f32 d, 256 int8, 16 int16 sums
  IQ2_XXS: { id: 16 }, IQ2_XS: { id: 17 }, IQ3_XXS: { id: 18 }, IQ1_S: { id: 19 }, IQ4_NL: { id: 20 },
  IQ3_S: { id: 21 }, IQ2_S: { id: 22 }, IQ4_XS: { id: 23 },
  I8: { id: 24, block: 1, bytes: 1 }, I16: { id: 25, block: 1, bytes: 2 }, I32: { id: 26, block: 1, bytes: 4 },
  I64: { id: 27, block: 1, bytes: 8 }, F64: { id: 28, block: 1, bytes: 8 },
  IQ1_M: { id: 29 },
  BF16: { id: 30, block: 1, bytes: 2 },
  TQ1_0: { id: 34 }, TQ2_0: { id: 35 }, MXFP4: { id: 39 },
};

/** Bytes of one row of `n` values of type `name` (n a multiple of its block). */
export function rowBytes(name, n) {
  const t = GGML_TYPES[name];
  if (!t?.block) throw new Error(`ggml type ${name} has no known layout`);
  if (n % t.block) throw new Error(`a row of ${n} values is not a whole number of ${name} blocks (${t.block} values)`);
  return (n / t.block) * t.bytes;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fr = Math.fround;

/** float32 -> IEEE half bits, round to nearest even (what ggml's GGML_FP32_TO_FP16 does). */
export function fp32ToFp16(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {  // subnormal or zero: a count of 2^-24 units, halves to even
    const v = Math.abs(x) * 16777216;
    let r = Math.floor(v);
    const rem = v - r;
    if (rem > 0.5 || (rem === 0.5 && r & 1)) r++;
    return sign | r;
  }
  return sign | ((a + 0xfff + ((a >>> 13) & 1) - 0x38000000) >>> 13);
}
/** IEEE half bits -> float32 value. */
export function fp16ToFp32(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** float32 -> bfloat16 bits, round to nearest even, NaN kept (ggml's GGML_FP32_TO_BF16). */
export function fp32ToBf16(x) {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 64;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// C's roundf: halves away from zero (Math.round sends -2.5 to -2).
const roundf = (v) => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));

function quantQ8_0(x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(o, fp32ToFp16(d), true);
    for (let j = 0; j < 32; j++) dv.setInt8(o + 2 + j, roundf(fr(x[b + j] * id)));
  }
}

function quantQ4_0(x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 32, o += 18) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b + j];
      if (amax < Math.abs(v)) amax = Math.abs(v), max = v;
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    dv.setUint16(o, fp32ToFp16(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[b + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[b + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
}

// k-quants: super-blocks of 256 values in 8 (Q4_K, Q5_K) or 16 (Q6_K) sub-blocks.

// 6-bit scale and min of sub-block j (0..7) into the 12-byte array, as get_scale_min_k4 reads them.
function putScaleMinK4(s, j, sc, m) {
  if (j < 4) {
    s[j] = (s[j] & 0xc0) | sc;
    s[j + 4] = (s[j + 4] & 0xc0) | m;
  } else {
    s[j + 4] = (sc & 15) | ((m & 15) << 4);
    s[j - 4] = (s[j - 4] & 0x3f) | ((sc >> 4) << 6);
    s[j] = (s[j] & 0x3f) | ((m >> 4) << 6);
  }
}

// One Q4_K / Q5_K super-block: value = d*sc*q - dmin*m with q in [0, 2^bits - 1].
// Returns the levels q (256) and writes d, dmin and the scales at `o`.
function quantKAffine(x, b, dv, out, o, bits) {
  const nmax = (1 << bits) - 1;
  const scale = new Float32Array(8), minv = new Float32Array(8);
  for (let j = 0; j < 8; j++) {
    let lo = Infinity, hi = -Infinity;
    for (let l = 0; l < 32; l++) lo = Math.min(lo, x[b + 32 * j + l]), hi = Math.max(hi, x[b + 32 * j + l]);
    lo = Math.min(lo, 0);  // the offset is a non-negative min subtracted: value = s*q - m
    scale[j] = (hi - lo) / nmax;
    minv[j] = -lo;
  }
  const maxScale = Math.max(...scale), maxMin = Math.max(...minv);
  const d = fr(maxScale / 63), dmin = fr(maxMin / 63);
  dv.setUint16(o, fp32ToFp16(d), true);
  dv.setUint16(o + 2, fp32ToFp16(dmin), true);
  const dh = fp16ToFp32(fp32ToFp16(d)), mh = fp16ToFp32(fp32ToFp16(dmin));
  const s = out.subarray(o + 4, o + 16);
  s.fill(0);
  const q = new Uint8Array(256);
  for (let j = 0; j < 8; j++) {
    const sc = dh ? Math.min(63, Math.round(scale[j] / dh)) : 0;
    const m = mh ? Math.min(63, Math.round(minv[j] / mh)) : 0;
    putScaleMinK4(s, j, sc, m);
    const ds = fr(dh * sc), dm = fr(mh * m);
    for (let l = 0; l < 32; l++) {
      const v = ds ? Math.round((x[b + 32 * j + l] + dm) / ds) : 0;
      q[32 * j + l] = Math.max(0, Math.min(nmax, v));
    }
  }
  return q;
}

function quantQ4_K(x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 256, o += 144) {
    const q = quantKAffine(x, b, dv, out, o, 4);
    // 64 values per 32 bytes: low nibbles the first 32, high nibbles the next 32.
    for (let c = 0; c < 4; c++)
      for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
  }
}

function quantQ5_K(x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 256, o += 176) {
    const q = quantKAffine(x, b, dv, out, o, 5);
    const qh = out.subarray(o + 16, o + 48), ql = out.subarray(o + 48, o + 176);
    qh.fill(0);
    for (let c = 0; c < 4; c++)
      for (let l = 0; l < 32; l++) {
        const lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        ql[32 * c + l] = (lo & 15) | ((hi & 15) << 4);
        if (lo & 16) qh[l] |= 1 << (2 * c);
        if (hi & 16) qh[l] |= 2 << (2 * c);
      }
  }
}

function quantQ6_K(x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, o = 0; b < x.length; b += 256, o += 210) {
    // 16 sub-blocks of 16 values, value = d * sc * (q - 32), q in [0, 63], sc int8.
    const sub = new Float32Array(16);
    for (let j = 0; j < 16; j++) {
      let m = 0;
      for (let l = 0; l < 16; l++) m = Math.max(m, Math.abs(x[b + 16 * j + l]));
      sub[j] = m / 31;
    }
    const maxSub = Math.max(...sub);
    const d = fr(maxSub / 127);
    dv.setUint16(o + 208, fp32ToFp16(d), true);
    const dh = fp16ToFp32(fp32ToFp16(d));
    const q = new Uint8Array(256);
    for (let j = 0; j < 16; j++) {
      const sc = dh ? Math.min(127, Math.round(sub[j] / dh)) : 0;
      dv.setInt8(o + 192 + j, sc);
      const ds = fr(dh * sc);
      for (let l = 0; l < 16; l++) {
        const v = ds ? Math.round(x[b + 16 * j + l] / ds) : 0;
        q[16 * j + l] = Math.max(-32, Math.min(31, v)) + 32;
      }
    }
    const ql = out.subarray(o, o + 128), qh = out.subarray(o + 128, o + 192);
    qh.fill(0);
    for (let n = 0; n < 2; n++)
      for (let l = 0; l < 32; l++) {
        const q1 = q[128 * n + l], q2 = q[128 * n + 32 + l], q3 = q[128 * n + 64 + l], q4 = q[128 * n + 96 + l];
        ql[64 * n + l] = (q1 & 15) | ((q3 & 15) << 4);
        ql[64 * n + 32 + l] = (q2 & 15) | ((q4 & 15) << 4);
        qh[32 * n + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
  }
}

/**
 * One row of float32 values (a Float32Array, length a multiple of the type's block) as
 * the bytes of ggml type `name`, written into `out` (rowBytes(name, x.length) bytes).
 */
export function quantizeRow(name, x, out) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (name) {
    case 'F32': for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i], true); return;
    case 'F16': for (let i = 0; i < x.length; i++) dv.setUint16(2 * i, fp32ToFp16(x[i]), true); return;
    case 'BF16': for (let i = 0; i < x.length; i++) dv.setUint16(2 * i, fp32ToBf16(x[i]), true); return;
    case 'Q8_0': return quantQ8_0(x, out);
    case 'Q4_0': return quantQ4_0(x, out);
    case 'Q4_K': return quantQ4_K(x, out);
    case 'Q5_K': return quantQ5_K(x, out);
    case 'Q6_K': return quantQ6_K(x, out);
  }
  throw new Error(`cannot write ggml type ${name} (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K can be written)`);
}
