// The relaxed-SIMD kernel module (rwkv-relaxed.wasm, rwkv-relaxed-mt.wasm): the prefill
// matmul of Q4_0 weights by int8 x with `i32x4.relaxed_dot_i8x16_i7x16_add_s` (16
// multiply-adds in one operation, one VNNI instruction in V8 on CPUs with AVX-VNNI).
// Emscripten 3.1.6 (clang 14, binaryen 108) cannot emit it: this file alone is built by
// clang-19 and linked by wasm-ld-19 into a module that imports the core's memory
// (relaxed.cpp loads and calls it; docs/computation.md describes the path).
//
// The module shares the core's memory: it must own nothing in it. No data, no static
// variables, no arrays on the stack, no calls to memset/memcpy: every value lives in
// locals, every buffer is an argument (CMakeLists.txt checks the linked module).
//
// The arithmetic (exact in integers per block, then float32 in one fixed order):
//   weights: Q4_0, nibbles n = q + 8 in 0..15, valid as the 7-bit operand;
//   x: int8 per block of 32 with its own scale dx (relaxed.cpp: quantize_x8);
//   per output (row r, token t), per block b in order:
//     isum = -8 * sum_i x_i + sum_i x_i * n_i = sum_i x_i * q_i      (int32, exact)
//     acc += float(isum) * (d[r][b] * dx[t][b])                      (float32, mul then add)
//   y = acc.
// The lanes of a vector are 4 tokens: x comes in groups of 4 tokens, each block as 8
// chunks of 4 values (chunk m: values 4m..4m+3; lane j: token j's), and a weight row is
// expanded once per call into the matching form (chunk m of a block: its 4 nibbles in
// every lane), so that one dot product adds 4 products to each of 4 tokens' sums and no
// horizontal sum is needed. Whatever the tile, an output's bits are the same.
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

namespace {

constexpr int kChunks = 8;  // chunks of 4 values per block of 32
constexpr int kQBytes = 16;  // bytes of nibbles per block

// R rows of q (nb blocks each, rows rq bytes apart) into w: block b of row i's chunk m at
// ((i * nb + b) * 8 + m) * 16 bytes, its 4 nibbles in each lane.
template <int R>
inline void expand(const uint8_t* q, size_t rq, int nb, uint8_t* w) {
  const v128_t low = wasm_i8x16_splat(0x0F);
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < nb; ++b) {
      const v128_t v = wasm_v128_load(q + i * rq + size_t(b) * kQBytes);
      const v128_t lo = wasm_v128_and(v, low), hi = wasm_u8x16_shr(v, 4);
      uint8_t* o = w + (size_t(i) * nb + b) * kChunks * 16;
      wasm_v128_store(o + 0 * 16, wasm_i32x4_shuffle(lo, lo, 0, 0, 0, 0));
      wasm_v128_store(o + 1 * 16, wasm_i32x4_shuffle(lo, lo, 1, 1, 1, 1));
      wasm_v128_store(o + 2 * 16, wasm_i32x4_shuffle(lo, lo, 2, 2, 2, 2));
      wasm_v128_store(o + 3 * 16, wasm_i32x4_shuffle(lo, lo, 3, 3, 3, 3));
      wasm_v128_store(o + 4 * 16, wasm_i32x4_shuffle(hi, hi, 0, 0, 0, 0));
      wasm_v128_store(o + 5 * 16, wasm_i32x4_shuffle(hi, hi, 1, 1, 1, 1));
      wasm_v128_store(o + 6 * 16, wasm_i32x4_shuffle(hi, hi, 2, 2, 2, 2));
      wasm_v128_store(o + 7 * 16, wasm_i32x4_shuffle(hi, hi, 3, 3, 3, 3));
    }
}

// R expanded rows (w; scales d, rows nb apart) by G groups of 4 tokens (x, dx, bias from
// group 0 of these): the 4 G sums of each row, lane j of acc[i][g] token 4 g + j's.
template <int R, int G>
inline void tile(const uint8_t* w, const float* d, int nb, const int8_t* x, const float* dx, const int32_t* bias,
                 v128_t (&acc)[R][G]) {
  for (int i = 0; i < R; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = wasm_f32x4_splat(0.0f);
  const size_t xg = size_t(nb) * kChunks * 16;  // bytes of x per group
  for (int b = 0; b < nb; ++b) {
    // Two sums per output (chunks 0-3 from the bias, 4-7 from 0): shorter dependency chains.
    v128_t s0[R][G], s1[R][G];
#pragma clang loop unroll(full)
    for (int g = 0; g < G; ++g) {
      const v128_t bg = wasm_v128_load(bias + (size_t(g) * nb + b) * 4);
#pragma clang loop unroll(full)
      for (int i = 0; i < R; ++i) s0[i][g] = bg, s1[i][g] = wasm_i32x4_splat(0);
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < kChunks / 2; ++m) {
      v128_t wa[R], wb[R];
#pragma clang loop unroll(full)
      for (int i = 0; i < R; ++i) {
        const uint8_t* wi = w + ((size_t(i) * nb + b) * kChunks + m) * 16;
        wa[i] = wasm_v128_load(wi);
        wb[i] = wasm_v128_load(wi + 4 * 16);
      }
#pragma clang loop unroll(full)
      for (int g = 0; g < G; ++g) {
        const int8_t* xm = x + g * xg + (size_t(b) * kChunks + m) * 16;
        const v128_t xa = wasm_v128_load(xm), xb = wasm_v128_load(xm + 4 * 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; ++i) {
          s0[i][g] = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(xa, wa[i], s0[i][g]);
          s1[i][g] = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(xb, wb[i], s1[i][g]);
        }
      }
    }
#pragma clang loop unroll(full)
    for (int g = 0; g < G; ++g) {
      const v128_t dxg = wasm_v128_load(dx + (size_t(g) * nb + b) * 4);
#pragma clang loop unroll(full)
      for (int i = 0; i < R; ++i) {
        const v128_t scale = wasm_f32x4_mul(wasm_v128_load32_splat(d + size_t(i) * nb + b), dxg);
        const v128_t sum = wasm_f32x4_convert_i32x4(wasm_i32x4_add(s0[i][g], s1[i][g]));
        acc[i][g] = wasm_f32x4_add(acc[i][g], wasm_f32x4_mul(sum, scale));
      }
    }
  }
}

// Lanes [0, n) of v into y[0], y[ystride], ...
inline void store_lanes(v128_t v, int n, float* y, size_t ystride) {
  y[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) y[ystride] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) y[2 * ystride] = wasm_f32x4_extract_lane(v, 2);
  if (n > 3) y[3 * ystride] = wasm_f32x4_extract_lane(v, 3);
}

template <int R>
inline void rows(const uint8_t* q, const float* d, int nb, const int8_t* x, const float* dx, const int32_t* bias, int T,
                 float* Y, int yrows, uint8_t* w) {
  expand<R>(q, size_t(nb) * kQBytes, nb, w);
  const int groups = (T + 3) / 4;
  const size_t xg = size_t(nb) * kChunks * 16;
  int G = 0;
  for (; G + 2 <= groups; G += 2) {
    v128_t acc[R][2];
    tile<R, 2>(w, d, nb, x + G * xg, dx + size_t(G) * nb * 4, bias + size_t(G) * nb * 4, acc);
    for (int i = 0; i < R; ++i)
      for (int g = 0; g < 2; ++g) {
        const int t = 4 * (G + g), n = T - t < 4 ? T - t : 4;
        store_lanes(acc[i][g], n, Y + size_t(t) * yrows + i, size_t(yrows));
      }
  }
  for (; G < groups; ++G) {
    v128_t acc[R][1];
    tile<R, 1>(w, d, nb, x + G * xg, dx + size_t(G) * nb * 4, bias + size_t(G) * nb * 4, acc);
    for (int i = 0; i < R; ++i) {
      const int t = 4 * G, n = T - t < 4 ? T - t : 4;
      store_lanes(acc[i][0], n, Y + size_t(t) * yrows + i, size_t(yrows));
    }
  }
}

}  // namespace

// Y[t * yrows + r] for rows [r0, r1) of a Q4_0 matrix (q: its q part, d: its scales; nb
// blocks per row) and T tokens of x quantized by quantize_x8 (groups of 4 tokens, the
// last one padded: group G's x at x + G * nb * 128, dx and bias at G * nb * 4).
// w: scratch of 2 * nb * 128 bytes (two expanded rows).
extern "C" __attribute__((export_name("q4_matmul"))) void q4_matmul(const uint8_t* q, const float* d, int nb, int r0,
                                                                   int r1, const int8_t* x, const float* dx,
                                                                   const int32_t* bias, int T, float* Y, int yrows,
                                                                   uint8_t* w) {
  const size_t rq = size_t(nb) * kQBytes;
  int r = r0;
  for (; r + 2 <= r1; r += 2) rows<2>(q + r * rq, d + size_t(r) * nb, nb, x, dx, bias, T, Y + r, yrows, w);
  for (; r < r1; ++r) rows<1>(q + r * rq, d + size_t(r) * nb, nb, x, dx, bias, T, Y + r, yrows, w);
}

// c + 4 a b in lane 0, by the instruction the kernel uses (the loader checks it: V8 11.3's
// baseline compiler, Liftoff, computes it wrongly on AVX-VNNI CPUs).
extern "C" __attribute__((export_name("probe"))) int probe(int a, int b, int c) {
  return wasm_i32x4_extract_lane(
      wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_i8x16_splat(int8_t(a)), wasm_i8x16_splat(int8_t(b)), wasm_i32x4_splat(c)), 0);
}
