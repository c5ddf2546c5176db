#pragma once
// The small SIMD vocabulary the kernels are written against, mapped to wasm SIMD128,
// AVX2(+FMA), SSE2, or plain scalar code. `vf` holds kLanes floats.
//
// Integer part, for the quantized weights (dtype.h): a `qblock` is one block of 32
// values widened to int16; `dot` sums the 32 products of two of them into the int32
// lanes of a `vi` (kLanes lanes; their sum is the block's dot product), which `to_float`
// converts. The 4-lane mappings (wasm SIMD128, SSE2) compute the same lanes. unpack_q4
// turns a block of 4-bit values into 32 int8, which widen_q8 then reads as the same
// qblock as widen_q4 of the block.
#include <cstdint>
#include <cstring>

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define RWKV_SIMD "wasm-simd128"
#elif defined(__AVX2__)
#include <immintrin.h>
#define RWKV_SIMD "avx2"
#elif defined(__SSE2__)
#include <emmintrin.h>
#define RWKV_SIMD "sse2"
#else
#define RWKV_SIMD "scalar"
#endif

namespace rwkv::simd {

#if defined(__wasm_simd128__)
using vf = v128_t;
constexpr int kLanes = 4;
inline vf load(const float* p) { return wasm_v128_load(p); }
inline void store(float* p, vf v) { wasm_v128_store(p, v); }
inline vf splat(float x) { return wasm_f32x4_splat(x); }
inline vf add(vf a, vf b) { return wasm_f32x4_add(a, b); }
inline vf sub(vf a, vf b) { return wasm_f32x4_sub(a, b); }
inline vf mul(vf a, vf b) { return wasm_f32x4_mul(a, b); }
inline vf madd(vf a, vf b, vf c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }  // a*b + c
inline vf pmax(vf a, vf b) { return wasm_f32x4_pmax(a, b); }  // a < b ? b : a (as std::max)
inline vf load_bf16(const uint16_t* p) {  // kLanes bf16 -> f32: the bits move to the high half
  return wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p)), 16);
}
// 2*kLanes bf16 from one load, as f32: the even-indexed elements (p[0], p[2], ...) in
// `even`, the odd-indexed ones in `odd`. A bf16 is the high half of an f32, so the odd
// elements are the 32-bit lanes with their low half cleared, the even ones shifted up.
inline void load_bf16x2(const uint16_t* p, vf& even, vf& odd) {
  const v128_t v = wasm_v128_load(p);
  even = wasm_i32x4_shl(v, 16);
  constexpr int32_t hi = int32_t(0xFFFF0000);
  odd = wasm_v128_and(v, wasm_i32x4_const(hi, hi, hi, hi));
}
inline vf load_splat(const float* p) { return wasm_v128_load32_splat(p); }
// p[2i] = even[i], p[2i+1] = odd[i] for i < kLanes.
inline void store_interleaved(float* p, vf even, vf odd) {
  wasm_v128_store(p, wasm_i32x4_shuffle(even, odd, 0, 4, 1, 5));
  wasm_v128_store(p + 4, wasm_i32x4_shuffle(even, odd, 2, 6, 3, 7));
}
inline float hsum(vf v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}
using vi = v128_t;
struct qblock { v128_t v[4]; };  // values 8j .. 8j + 7 in v[j]
inline qblock load_q16(const int16_t* x) {
  return {{wasm_v128_load(x), wasm_v128_load(x + 8), wasm_v128_load(x + 16), wasm_v128_load(x + 24)}};
}
inline qblock widen_q8(const uint8_t* p) {  // 32 int8, by loads that sign-extend 8 at a time
  return {{wasm_i16x8_load8x8(p), wasm_i16x8_load8x8(p + 8), wasm_i16x8_load8x8(p + 16), wasm_i16x8_load8x8(p + 24)}};
}
// 16 bytes of 4-bit values (j in the low nibble of byte j, j + 16 in its high nibble, each
// stored + 8) into 32 int8 values.
inline void unpack_q4(const uint8_t* p, int8_t* out) {
  const v128_t v = wasm_v128_load(p), eight = wasm_i8x16_splat(8);
  wasm_v128_store(out, wasm_i8x16_sub(wasm_v128_and(v, wasm_i8x16_splat(15)), eight));
  wasm_v128_store(out + 16, wasm_i8x16_sub(wasm_u8x16_shr(v, 4), eight));
}
inline qblock widen_q4(const uint8_t* p) {  // 16 bytes: values j (low nibble) and j + 16 (high)
  const v128_t v = wasm_v128_load(p), eight = wasm_i8x16_splat(8);
  const v128_t lo = wasm_i8x16_sub(wasm_v128_and(v, wasm_i8x16_splat(15)), eight);
  const v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(v, 4), eight);
  return {{wasm_i16x8_extend_low_i8x16(lo), wasm_i16x8_extend_high_i8x16(lo), wasm_i16x8_extend_low_i8x16(hi),
           wasm_i16x8_extend_high_i8x16(hi)}};
}
inline vi dot(const qblock& a, const qblock& b) {
  return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(a.v[0], b.v[0]), wasm_i32x4_dot_i16x8(a.v[1], b.v[1])),
                        wasm_i32x4_add(wasm_i32x4_dot_i16x8(a.v[2], b.v[2]), wasm_i32x4_dot_i16x8(a.v[3], b.v[3])));
}
inline vf to_float(vi v) { return wasm_f32x4_convert_i32x4(v); }
#elif defined(__AVX2__)
using vf = __m256;
constexpr int kLanes = 8;
inline vf load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf splat(float x) { return _mm256_set1_ps(x); }
inline vf add(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf pmax(vf a, vf b) { return _mm256_max_ps(b, a); }  // a < b ? b : a (as std::max)
#if defined(__FMA__)
inline vf madd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
#else
inline vf madd(vf a, vf b, vf c) { return _mm256_add_ps(_mm256_mul_ps(a, b), c); }
#endif
inline vf load_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline void load_bf16x2(const uint16_t* p, vf& even, vf& odd) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int32_t(0xFFFF0000))));
}
inline vf load_splat(const float* p) { return _mm256_broadcast_ss(p); }
inline void store_interleaved(float* p, vf even, vf odd) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
inline float hsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
using vi = __m256i;
struct qblock { __m256i v[2]; };  // values 16j .. 16j + 15 in v[j]
inline qblock load_q16(const int16_t* x) {
  return {{_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)),
           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16))}};
}
inline qblock widen_q8(const uint8_t* p) {
  return {{_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
           _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))}};
}
inline void unpack_q4(const uint8_t* p, int8_t* out) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_sub_epi8(_mm_and_si128(v, m), eight));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight));
}
inline qblock widen_q4(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m), eight);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);
  return {{_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi)}};
}
inline vi dot(const qblock& a, const qblock& b) {
  return _mm256_add_epi32(_mm256_madd_epi16(a.v[0], b.v[0]), _mm256_madd_epi16(a.v[1], b.v[1]));
}
inline vf to_float(vi v) { return _mm256_cvtepi32_ps(v); }
#elif defined(__SSE2__)
using vf = __m128;
constexpr int kLanes = 4;
inline vf load(const float* p) { return _mm_loadu_ps(p); }
inline void store(float* p, vf v) { _mm_storeu_ps(p, v); }
inline vf splat(float x) { return _mm_set1_ps(x); }
inline vf add(vf a, vf b) { return _mm_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm_mul_ps(a, b); }
inline vf pmax(vf a, vf b) { return _mm_max_ps(b, a); }  // a < b ? b : a (as std::max)
inline vf madd(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline vf load_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
}
inline void load_bf16x2(const uint16_t* p, vf& even, vf& odd) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  even = _mm_castsi128_ps(_mm_slli_epi32(v, 16));
  odd = _mm_castsi128_ps(_mm_and_si128(v, _mm_set1_epi32(int32_t(0xFFFF0000))));
}
inline vf load_splat(const float* p) { return _mm_load1_ps(p); }
inline void store_interleaved(float* p, vf even, vf odd) {
  _mm_storeu_ps(p, _mm_unpacklo_ps(even, odd));
  _mm_storeu_ps(p + 4, _mm_unpackhi_ps(even, odd));
}
inline float hsum(vf v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  return _mm_cvtss_f32(v);
}
using vi = __m128i;
struct qblock { __m128i v[4]; };  // values 8j .. 8j + 7 in v[j]
inline qblock load_q16(const int16_t* x) {
  const auto* p = reinterpret_cast<const __m128i*>(x);
  return {{_mm_loadu_si128(p), _mm_loadu_si128(p + 1), _mm_loadu_si128(p + 2), _mm_loadu_si128(p + 3)}};
}
// int8 lanes 0-7 / 8-15 of v, sign-extended to int16 (SSE2 has no pmovsxbw).
inline __m128i extend_lo8(__m128i v) { return _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8); }
inline __m128i extend_hi8(__m128i v) { return _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8); }
inline qblock widen_q8(const uint8_t* p) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  return {{extend_lo8(a), extend_hi8(a), extend_lo8(b), extend_hi8(b)}};
}
inline void unpack_q4(const uint8_t* p, int8_t* out) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_sub_epi8(_mm_and_si128(v, m), eight));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight));
}
inline qblock widen_q4(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m), eight);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);
  return {{extend_lo8(lo), extend_hi8(lo), extend_lo8(hi), extend_hi8(hi)}};
}
inline vi dot(const qblock& a, const qblock& b) {
  return _mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(a.v[0], b.v[0]), _mm_madd_epi16(a.v[1], b.v[1])),
                       _mm_add_epi32(_mm_madd_epi16(a.v[2], b.v[2]), _mm_madd_epi16(a.v[3], b.v[3])));
}
inline vf to_float(vi v) { return _mm_cvtepi32_ps(v); }
#else
struct vf { float x; };
constexpr int kLanes = 1;
inline vf load(const float* p) { return {*p}; }
inline void store(float* p, vf v) { *p = v.x; }
inline vf splat(float x) { return {x}; }
inline vf add(vf a, vf b) { return {a.x + b.x}; }
inline vf sub(vf a, vf b) { return {a.x - b.x}; }
inline vf mul(vf a, vf b) { return {a.x * b.x}; }
inline vf pmax(vf a, vf b) { return {a.x < b.x ? b.x : a.x}; }
inline vf madd(vf a, vf b, vf c) { return {a.x * b.x + c.x}; }
inline vf load_bf16(const uint16_t* p) {
  uint32_t bits = uint32_t(*p) << 16;
  vf v;
  std::memcpy(&v.x, &bits, 4);
  return v;
}
inline void load_bf16x2(const uint16_t* p, vf& even, vf& odd) {
  even = load_bf16(p);
  odd = load_bf16(p + 1);
}
inline vf load_splat(const float* p) { return {*p}; }
inline void store_interleaved(float* p, vf even, vf odd) {
  p[0] = even.x;
  p[1] = odd.x;
}
inline float hsum(vf v) { return v.x; }
struct vi { int32_t x; };
struct qblock { int16_t v[32]; };
inline qblock load_q16(const int16_t* x) {
  qblock b;
  std::memcpy(b.v, x, sizeof b.v);
  return b;
}
inline qblock widen_q8(const uint8_t* p) {
  qblock b;
  for (int i = 0; i < 32; ++i) b.v[i] = int8_t(p[i]);
  return b;
}
inline void unpack_q4(const uint8_t* p, int8_t* out) {
  for (int j = 0; j < 16; ++j) out[j] = int8_t((p[j] & 15) - 8), out[j + 16] = int8_t((p[j] >> 4) - 8);
}
inline qblock widen_q4(const uint8_t* p) {
  qblock b;
  for (int j = 0; j < 16; ++j) b.v[j] = int16_t((p[j] & 15) - 8), b.v[j + 16] = int16_t((p[j] >> 4) - 8);
  return b;
}
inline vi dot(const qblock& a, const qblock& b) {
  int32_t s = 0;
  for (int i = 0; i < 32; ++i) s += int32_t(a.v[i]) * b.v[i];
  return {s};
}
inline vf to_float(vi v) { return {float(v.x)}; }
#endif

}  // namespace rwkv::simd
