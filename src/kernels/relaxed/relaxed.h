#pragma once
// The relaxed-SIMD path of the quantized prefill (wasm builds; docs/kernels.md). The
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
// dx = max|x| / 127 and q = round(x / dx) in int8, and the bias vector of the Q4_0
// kernel (lane k: -8 times the x values summed into lane k). Tokens in groups of 4:
// group t0's block b of token j at index (t0 * nb + b * g + j) (q: times 32, bias:
// times 4), g the group's size. A row with NaN or infinity gets dx = NaN.
struct X8 {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> bias;
};
void quantize_x8(const float* X, int T, int n, X8& out);

// Y[t][r] for rows [r0, r1) of a Q4_0 matrix and the T tokens of x, by the module.
void q4_matmul(const void* module, const Matrix& W, const X8& x, int T, float* Y, int r0, int r1);

}  // namespace rwkv::kernels::relaxed
