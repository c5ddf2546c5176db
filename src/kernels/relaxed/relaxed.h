#pragma once
// The relaxed-SIMD path of the quantized prefill (wasm builds; docs/computation.md). The
// kernels live in a module of their own (q4_kernel.cpp, built by clang-19:
// rwkv-relaxed.wasm, rwkv-relaxed-mt.wasm) that shares the core's memory; this file loads
// it (once, on the thread that asks) and calls it (each thread instantiates it on its
// first call). Where it cannot be loaded (native builds, a host without relaxed SIMD, the
// module not built, or switched off), the SIMD128 kernels of kernels.cpp do the work.
#include <cstdint>
#include <vector>

#include "base/matrix.h"

namespace rwkv::kernels::relaxed {

// The loaded module (heap bytes the threads instantiate from), or null: not loaded or
// switched off. Loads it on the first call: call it on the thread that prepares a product.
const void* module();
// Off: module() is null and the SIMD128 kernels run (tests compare both). On by default.
void set_enabled(bool on);

// T rows of X (n values, n % 32 == 0) quantized for the kernel: per block of 32 values,
// dx = max|x| / 127, q = round(x * (127 / max|x|)) in int8, and bias = -8 * sum(q). Tokens in groups
// of 4 (the last one padded with zeros), a vector lane per token: d and bias of token
// 4 G + j's block b at (G * nb + b) * 4 + j; q: values 4m..4m+3 of that block at
// ((G * nb + b) * 8 + m) * 16 + 4 j. A row with NaN or infinity gets dx = NaN.
struct X8 {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> bias;
};
void quantize_x8(const float* X, int T, int n, X8& out);

// Y[t][r] for rows [r0, r1) of a Q4_0 matrix and the T tokens of x, by the module.
void q4_matmul(const void* module, const Matrix& W, const X8& x, int T, float* Y, int r0, int r1);

}  // namespace rwkv::kernels::relaxed
