#pragma once
// Compute kernels. Each exists twice: in `rwkv::kernels` (written against the SIMD
// vocabulary of simd.h, mapped to wasm SIMD128 / AVX2 / SSE2) and in
// `rwkv::kernels::scalar` (plain loops, the reference the tests compare against).
// All arithmetic is float32; weights are float32 or bfloat16.
#include <cstdint>
#include <cstring>

#include "tensor.h"

namespace rwkv {

// A row-major weight matrix (rows, cols) in F32 or BF16, viewed in place.
struct Matrix {
  DType dtype = DType::F32;
  int rows = 0, cols = 0;
  const void* data = nullptr;
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* bf16() const { return static_cast<const uint16_t*>(data); }
  size_t bytes() const { return size_t(rows) * size_t(cols) * dtype_size(dtype); }
  // Row r as float32 into out[cols].
  void row(int r, float* out) const;
};

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace kernels {

#define RWKV_KERNEL_DECLS                                                                          \
  /* y[r] = sum_c W[r][c] * x[c]      x (W.cols), y (W.rows) */                                     \
  void matvec(const Matrix& W, const float* x, float* y);                                          \
  /* Y[t][r] = sum_c W[r][c] * X[t][c]  X (T, W.cols), Y (T, W.rows) */                             \
  void matmul(const Matrix& W, const float* X, int T, float* Y);                                   \
  /* Y[t][c] = sum_r X[t][r] * W[r][c]  X (T, W.rows), Y (T, W.cols): the `x @ w1` of the LoRAs */  \
  void vecmat(const Matrix& W, const float* X, int T, float* Y);                                   \
  /* y = (x - mean) / sqrt(var + eps) * w + b over n values */                                     \
  void layer_norm(const float* x, const float* w, const float* b, int n, float eps, float* y);     \
  /* One WKV step for all H heads, S (H, N, N) as [head][value p][key q], in place:               \
     S = S*diag(w) + (S*(-kk)) (kk*a)^T + v k^T;  y = S r.  All vectors (H*N). */                 \
  void wkv(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk, \
           const float* a, int H, int N, float* y);

RWKV_KERNEL_DECLS
namespace scalar {
RWKV_KERNEL_DECLS
}
#undef RWKV_KERNEL_DECLS

// The name of the SIMD mapping compiled in ("wasm-simd128", "avx2", "sse2", "scalar").
const char* simd_name();

}  // namespace kernels
}  // namespace rwkv
