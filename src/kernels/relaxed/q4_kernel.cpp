// The relaxed-SIMD kernel module (rwkv-relaxed.wasm, rwkv-relaxed-mt.wasm): the prefill
// matmul of Q4_0 weights by int8 x with `i32x4.relaxed_dot_i8x16_i7x16_add_s` (16
// multiply-adds in one operation, one VNNI instruction in V8 on CPUs with AVX-VNNI).
// Emscripten 3.1.6 (clang 14, binaryen 108) cannot emit it: this file alone is built by
// clang-19 and linked by wasm-ld-19 into a module that imports the core's memory
// (relaxed.cpp loads and calls it; docs/kernels.md describes the path).
//
// The module shares the core's memory: it must own nothing in it. No data, no static
// variables, no arrays on the stack, no calls to memset/memcpy: every value lives in
// locals, every buffer is an argument (CMakeLists.txt checks the linked module).
//
// The arithmetic (exact in integers per block, then float32 in one fixed order):
//   weights: Q4_0, nibbles n = q + 8 in 0..15, valid as the 7-bit operand;
//   x: int8 per block of 32 with its own scale dx (relaxed.cpp: quantize_x8);
//   per output (row r, token t), per block b in order:
//     isum = bias[t][b] + sum_i x_i * n_i                    (int32, 4 lanes, exact)
//       with bias lane k = -8 * (the x values summed into lane k), so that
//       the lanes add up to sum_i x_i * (n_i - 8) = sum_i x_i * q_i;
//     acc += float(isum) * (d[r][b] * dx[t][b])               (4 lanes, mul then add)
//   y = (acc0 + acc2) + (acc1 + acc3).
// Whatever the tile (rows x tokens) an output is computed in, its bits are the same.
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

namespace {

constexpr int kBlock = 32;   // values per block
constexpr int kQBytes = 16;  // bytes of nibbles per block

inline float hsum(v128_t v) {
  const v128_t s = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_extract_lane(wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2)), 0);
}

// R weight rows from row r (q, d: row r's blocks and scales) by TT tokens from token j0
// of a group of g tokens (x, dx, bias of the group: block b of token j at (b * g + j)).
template <int R, int TT>
inline void tile(const uint8_t* q, const float* d, int nb, const int8_t* x, const float* dx, const int32_t* bias,
                 int g, int j0, float* Y, int yrows) {
  v128_t acc[R][TT];
#pragma clang loop unroll(full)
  for (int i = 0; i < R; ++i)
#pragma clang loop unroll(full)
    for (int j = 0; j < TT; ++j) acc[i][j] = wasm_f32x4_splat(0.0f);
  const v128_t low = wasm_i8x16_splat(0x0F);
  const size_t rq = size_t(nb) * kQBytes;
  for (int b = 0; b < nb; ++b) {
    v128_t lo[R], hi[R], ds[R];
#pragma clang loop unroll(full)
    for (int i = 0; i < R; ++i) {
      const v128_t w = wasm_v128_load(q + i * rq + size_t(b) * kQBytes);
      lo[i] = wasm_v128_and(w, low);
      hi[i] = wasm_u8x16_shr(w, 4);
      ds[i] = wasm_v128_load32_splat(d + size_t(i) * nb + b);
    }
    const size_t o = size_t(b) * g + j0;
#pragma clang loop unroll(full)
    for (int j = 0; j < TT; ++j) {
      const int8_t* xj = x + (o + j) * kBlock;
      const v128_t xl = wasm_v128_load(xj), xh = wasm_v128_load(xj + 16);
      const v128_t bj = wasm_v128_load(bias + (o + j) * 4);
      const v128_t sj = wasm_v128_load32_splat(dx + o + j);
#pragma clang loop unroll(full)
      for (int i = 0; i < R; ++i) {
        const v128_t s = wasm_i32x4_relaxed_dot_i8x16_i7x16_add(xh, hi[i], wasm_i32x4_relaxed_dot_i8x16_i7x16_add(xl, lo[i], bj));
        acc[i][j] = wasm_f32x4_add(acc[i][j], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), wasm_f32x4_mul(ds[i], sj)));
      }
    }
  }
#pragma clang loop unroll(full)
  for (int i = 0; i < R; ++i)
#pragma clang loop unroll(full)
    for (int j = 0; j < TT; ++j) Y[size_t(j0 + j) * yrows + i] = hsum(acc[i][j]);
}

template <int R>
inline void rows_by_group(const uint8_t* q, const float* d, int nb, const int8_t* x, const float* dx,
                          const int32_t* bias, int g, float* Y, int yrows) {
  switch (g) {
    case 4: return tile<R, 4>(q, d, nb, x, dx, bias, g, 0, Y, yrows);
    case 3: return tile<R, 3>(q, d, nb, x, dx, bias, g, 0, Y, yrows);
    case 2: return tile<R, 2>(q, d, nb, x, dx, bias, g, 0, Y, yrows);
    default: return tile<R, 1>(q, d, nb, x, dx, bias, g, 0, Y, yrows);
  }
}

}  // namespace

// Y[t * yrows + r] for rows [r0, r1) of a Q4_0 matrix (q: its q part, d: its scales; nb
// blocks per row) and T tokens of x quantized by quantize_x8 (groups of kGroup = 4
// tokens: group t0's x at x + t0 * nb * 32, dx at dx + t0 * nb, bias at bias + t0 * nb * 4).
extern "C" __attribute__((export_name("q4_matmul"))) void q4_matmul(const uint8_t* q, const float* d, int nb, int r0,
                                                                   int r1, const int8_t* x, const float* dx,
                                                                   const int32_t* bias, int T, float* Y, int yrows) {
  constexpr int kGroup = 4;
  const size_t rq = size_t(nb) * kQBytes;
  int r = r0;
  for (; r + 2 <= r1; r += 2)
    for (int t = 0; t < T; t += kGroup) {
      const int g = T - t < kGroup ? T - t : kGroup;
      rows_by_group<2>(q + r * rq, d + size_t(r) * nb, nb, x + size_t(t) * nb * kBlock, dx + size_t(t) * nb,
                       bias + size_t(t) * nb * 4, g, Y + size_t(t) * yrows + r, yrows);
    }
  for (; r < r1; ++r)
    for (int t = 0; t < T; t += kGroup) {
      const int g = T - t < kGroup ? T - t : kGroup;
      rows_by_group<1>(q + r * rq, d + size_t(r) * nb, nb, x + size_t(t) * nb * kBlock, dx + size_t(t) * nb,
                       bias + size_t(t) * nb * 4, g, Y + size_t(t) * yrows + r, yrows);
    }
}

// c + 4 a b in lane 0, by the instruction the kernel uses (the loader checks it: V8 11.3's
// baseline compiler, Liftoff, computes it wrongly on AVX-VNNI CPUs).
extern "C" __attribute__((export_name("probe"))) int probe(int a, int b, int c) {
  return wasm_i32x4_extract_lane(
      wasm_i32x4_relaxed_dot_i8x16_i7x16_add(wasm_i8x16_splat(int8_t(a)), wasm_i8x16_splat(int8_t(b)), wasm_i32x4_splat(c)), 0);
}
