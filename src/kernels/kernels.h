#pragma once
// Compute kernels. Each exists twice: in `rwkv::kernels` (written against the SIMD
// vocabulary of simd.h, mapped to wasm SIMD128 / AVX2 / SSE2) and in
// `rwkv::kernels::scalar` (plain loops, the reference the tests compare against).
// All arithmetic is float32; weights are float32 or bfloat16.
//
// The SIMD kernels fix one order of summation per output (see kernels.cpp), shared by the
// one-token and the many-token forms: matvec and matmul give the same bits for the same
// row, a vecmat row the same bits whatever T, the threaded forms the same bits as the
// single-thread ones; and the SSE2 and wasm SIMD128 mappings (4 lanes, no FMA) the same
// bits as each other. Compared with the scalar reference they differ by rounding only.
// One exception: in wasm hosts with relaxed SIMD, the matmul (T > 1) of Q4_0 matrices is
// done by the relaxed-SIMD module (kernels/relaxed/relaxed.h), with x in int8: its rows
// are not the matvec's bits (still the same bits for any thread count).
#include <cstdint>
#include <cstring>

#include "base/matrix.h"

namespace rwkv {

class ThreadPool;

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
           const float* a, int H, int N, float* y);                                                 \
  /* x = max(x, 0)^2 in place over n values (the FFN activation; NaN stays NaN) */                 \
  void relu_square(float* x, size_t n);

RWKV_KERNEL_DECLS
namespace scalar {
RWKV_KERNEL_DECLS
}
#undef RWKV_KERNEL_DECLS

// matvec and matmul split by rows over a pool's threads (on the caller alone for small
// matrices). Every output is computed exactly as by the single-thread forms: the results
// are the same bits for any pool size.
void matvec(const Matrix& W, const float* x, float* y, ThreadPool& pool);
void matmul(const Matrix& W, const float* X, int T, float* Y, ThreadPool& pool);
// Independent vecmats over the same number T of x rows, run side by side on the pool's
// threads (the LoRAs of one layer). The same numbers as n calls of `vecmat`.
struct VecmatJob {
  const Matrix* W;
  const float* X;  // (T, W->rows)
  float* Y;        // (T, W->cols)
};
void vecmat_multi(const VecmatJob* jobs, int n, int T, ThreadPool& pool);
// T tokens of `wkv` in a row: r, w, k, v, kk, a and y are (T, H*N); the heads split over
// the pool's threads. The same numbers as T calls of `wkv`.
void wkv_seq(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
             const float* a, int T, int H, int N, float* y, ThreadPool& pool);

// Calls on a pool with less work than this (multiply-adds, default 65536) run on the
// calling thread alone. For tests, which want small models to take the threaded paths.
void set_parallel_min(size_t n);

// The name of the SIMD mapping compiled in ("wasm-simd128", "avx2", "sse2", "scalar").
const char* simd_name();

}  // namespace kernels
}  // namespace rwkv
