#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "kernels/relaxed/relaxed.h"
#include "kernels/simd.h"
#include "kernels/threads.h"

namespace rwkv {

namespace kernels {

const char* simd_name() { return RWKV_SIMD; }

namespace {
size_t g_parallel_min = size_t(1) << 16;
}
void set_parallel_min(size_t n) { g_parallel_min = n; }

// ---------------------------------------------------------------- scalar reference
namespace scalar {

void matvec(const Matrix& W, const float* x, float* y) { matmul(W, x, 1, y); }

void matmul(const Matrix& W, const float* X, int T, float* Y) {
  std::vector<float> w(W.cols);
  for (int r = 0; r < W.rows; ++r) {
    W.row(r, w.data());
    for (int t = 0; t < T; ++t) {
      const float* x = X + size_t(t) * W.cols;
      float s = 0;
      for (int c = 0; c < W.cols; ++c) s += w[c] * x[c];
      Y[size_t(t) * W.rows + r] = s;
    }
  }
}

void vecmat(const Matrix& W, const float* X, int T, float* Y) {
  std::vector<float> w(W.cols);
  std::fill(Y, Y + size_t(T) * W.cols, 0.0f);
  for (int r = 0; r < W.rows; ++r) {
    W.row(r, w.data());
    for (int t = 0; t < T; ++t) {
      const float xr = X[size_t(t) * W.rows + r];
      float* y = Y + size_t(t) * W.cols;
      for (int c = 0; c < W.cols; ++c) y[c] += xr * w[c];
    }
  }
}

void layer_norm(const float* x, const float* w, const float* b, int n, float eps, float* y) {
  float mean = 0;
  for (int i = 0; i < n; ++i) mean += x[i];
  mean /= float(n);
  float var = 0;
  for (int i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= float(n);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

void wkv(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
         const float* a, int H, int N, float* y) {
  for (int h = 0; h < H; ++h) {
    const int o = h * N;
    for (int p = 0; p < N; ++p) {
      float* row = S + (size_t(h) * N + p) * N;
      float sa = 0;
      for (int q = 0; q < N; ++q) sa -= row[q] * kk[o + q];
      float out = 0;
      for (int q = 0; q < N; ++q) {
        row[q] = row[q] * w[o + q] + sa * (kk[o + q] * a[o + q]) + v[o + p] * k[o + q];
        out += row[q] * r[o + q];
      }
      y[o + p] = out;
    }
  }
}

void relu_square(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float h = std::max(x[i], 0.0f);
    x[i] = h * h;
  }
}

}  // namespace scalar

// ---------------------------------------------------------------- SIMD mapping
using namespace simd;

// The order of the sums. Every kernel that computes a dot product of a weight row with
// x (matvec, matmul, their threaded forms) follows one order, so their results are
// bit-identical and do not depend on how rows are grouped or split between threads:
//   one vector accumulator per (row, x); per block of kBlock = 2 * kLanes columns, two
//   products added in turn:
//     BF16: acc += even(w) * even(x); acc += odd(w) * odd(x)   (one load unpacks into
//           the even- and odd-indexed elements: see load_bf16x2)
//     F32:  acc += w[0:L] * x[0:L];   acc += w[L:2L] * x[L:2L]
//   then the horizontal sum, then the columns past the last full block one by one.
// x is put in "pair order" once per call (BF16: each block's even elements, then its odd
// ones; F32: as it is). vecmat sums every output over the rows in order, as the scalar
// reference does. With the same kLanes and no FMA (SSE2, wasm SIMD128) the results are
// the same bits on both.
namespace {

constexpr int kBlock = 2 * kLanes;

inline float wval(const float* p, size_t i) { return p[i]; }
inline float wval(const uint16_t* p, size_t i) { return bf16_to_f32(p[i]); }

template <DType D>
struct Pair;
template <>
struct Pair<DType::F32> {
  using T = float;
  static const T* data(const Matrix& W) { return W.f32(); }
  static void load(const float* p, vf& a, vf& b) {
    a = simd::load(p);
    b = simd::load(p + kLanes);
  }
  static void store(float* p, vf a, vf b) {
    simd::store(p, a);
    simd::store(p + kLanes, b);
  }
};
template <>
struct Pair<DType::BF16> {
  using T = uint16_t;
  static const T* data(const Matrix& W) { return W.bf16(); }
  static void load(const uint16_t* p, vf& a, vf& b) { load_bf16x2(p, a, b); }
  static void store(float* p, vf a, vf b) { store_interleaved(p, a, b); }
};

// T rows of n floats (row stride n) in the pair order of D, into `buf`: every full block
// deinterleaved (the columns past it as they are). F32 needs none: buf stays empty and X
// is used as it is.
void pair_order(DType D, const float* X, int T, int n, std::vector<float>& buf) {
  if (D == DType::F32) return;
  const int body = n - n % kBlock;
  buf.resize(size_t(T) * n);
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * n;
    float* o = buf.data() + size_t(t) * n;
    for (int c = 0; c < body; c += kBlock)
      for (int j = 0; j < kLanes; ++j) {
        o[c + j] = x[c + 2 * j];
        o[c + kLanes + j] = x[c + 2 * j + 1];
      }
    for (int c = body; c < n; ++c) o[c] = x[c];
  }
}

// R rows of W (row length cols), `stride` elements apart, with xp (pair order): y[0],
// y[ystride], ... y[(R - 1) * ystride].
template <DType D, int R>
inline void dot_rows(const typename Pair<D>::T* w, size_t stride, size_t cols, const float* xp, float* y,
                     size_t ystride) {
  const size_t body = cols - cols % kBlock;
  const typename Pair<D>::T* row[R];
  vf acc[R];
  for (int r = 0; r < R; ++r) row[r] = w + r * stride, acc[r] = splat(0);
  for (size_t c = 0; c < body; c += kBlock) {
    const vf xa = load(xp + c), xb = load(xp + c + kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      vf a, b;
      Pair<D>::load(row[r] + c, a, b);
      acc[r] = madd(a, xa, acc[r]);
      acc[r] = madd(b, xb, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum(acc[r]);
    for (size_t c = body; c < cols; ++c) s += wval(row[r], c) * xp[c];
    y[r * ystride] = s;
  }
}

// Rows [r0, r1) of W x. The memory-bound decode path: the rows are read as kStreams long
// sequential streams (stream j takes the j-th eighth of the range, one row after the
// other), which the hardware prefetchers follow far better than rows side by side. 8
// streams read the 0.1B shape's matrices at 14-16 GB/s in wasm (bf16) where 4 got 11-13.
constexpr int kStreams = 8;
template <DType D>
void matvec_rows(const Matrix& W, const float* xp, float* y, int r0, int r1) {
  const size_t cols = size_t(W.cols);
  const auto* w = Pair<D>::data(W);
  const int q = (r1 - r0) / kStreams;
  for (int i = 0; i < q; ++i)
    dot_rows<D, kStreams>(w + (size_t(r0) + i) * cols, size_t(q) * cols, cols, xp, y + r0 + i, size_t(q));
  for (int r = r0 + q * kStreams; r < r1; ++r) dot_rows<D, 1>(w + size_t(r) * cols, 0, cols, xp, y + r, 0);
}

// ---- prefill of F32/BF16 weights
// T rows of src (row stride n) into groups of G rows (the last one smaller), each group
// interleaved by kLanes floats over the first `body` columns: group g0 at
// out + g0 * body, its row j's columns [c, c + kLanes) at c * gs + j * kLanes.
void interleave(const float* src, int T, int n, int body, int G, std::vector<float>& out) {
  out.resize(size_t(T) * body);
  for (int g0 = 0; g0 < T; g0 += G) {
    const int gs = std::min(G, T - g0);
    float* o = out.data() + size_t(g0) * body;
    for (int c = 0; c < body; c += kLanes)
      for (int j = 0; j < gs; ++j) store(o + size_t(c) * gs + j * kLanes, load(src + size_t(g0 + j) * n + c));
  }
}

// A tile: RR weight rows (from row a0 of a panel group of gr rows at w) by TTT tokens
// (from token j0 of a token group of g at x), n columns; the running sums in registers,
// one load per weight vector and per token vector. 2 x 4 (8 sums, 4 x vectors, a weight
// vector and a product) measured ahead of 5 x 2, 3 x 3 and 3 x 4 in wasm by far (V8
// spills past ~13 live vectors) and a little ahead of 4 x 2.
constexpr int kTileRows = 2, kTileTokens = 4;
template <int RR, int TTT>
inline void plain_tile(const float* w, int gr, const float* x, int g, int n, vf (&acc)[RR][TTT]) {
  const size_t ws = size_t(gr) * kLanes, xs = size_t(g) * kLanes;
  for (int c = 0; c < n; c += kLanes, w += ws, x += xs) {
    vf xv[TTT];
#pragma GCC unroll 8
    for (int j = 0; j < TTT; ++j) xv[j] = load(x + j * kLanes);
#pragma GCC unroll 8
    for (int i = 0; i < RR; ++i) {
      const vf wv = load(w + i * kLanes);
#pragma GCC unroll 8
      for (int j = 0; j < TTT; ++j) acc[i][j] = madd(wv, xv[j], acc[i][j]);
    }
  }
}

// Y[t][r] for rows [r0, r1) and all T tokens of xt (pair order, in groups of kTileTokens:
// see interleave): kTileRows weight rows at a time are unpacked into f32 in pair order,
// interleaved like the tokens (the panel: 2 rows of up to 3072 columns fit L1), then every
// token group goes by. Every output summed in the order of dot_rows (a matmul row is the
// matvec of that row, bit for bit).
template <DType D>
void matmul_rows(const Matrix& W, const float* xt, const float* X, int T, float* Y, int r0, int r1) {
  const int cols = W.cols, body = cols - cols % kBlock;
  const auto* w = Pair<D>::data(W);
  if (body == 0) {  // narrower than a block: no panel, the scalar tail is each sum (as out() adds it to 0)
    for (int r = r0; r < r1; ++r)
      for (int t = 0; t < T; ++t) {
        const auto* wr = w + size_t(r) * cols;
        const float* x = X + size_t(t) * cols;
        float s = 0.0f;
        for (int c = 0; c < cols; ++c) s += wval(wr, size_t(c)) * x[c];
        Y[size_t(t) * W.rows + r] = s;
      }
    return;
  }
  std::vector<float> panel(size_t(kTileRows) * body);
  for (int r = r0; r < r1; r += kTileRows) {
    const int gr = std::min(kTileRows, r1 - r);
    for (int a = 0; a < gr; ++a) {
      const auto* row = w + (size_t(r) + a) * cols;
      float* o = panel.data() + a * kLanes;
      for (int c = 0; c < body; c += kBlock) {
        vf p, q;
        Pair<D>::load(row + c, p, q);
        store(o + size_t(c) * gr, p);
        store(o + size_t(c + kLanes) * gr, q);
      }
    }
    auto out = [&](int i, int t, vf acc) {
      const auto* wr = w + (size_t(r) + i) * cols;
      const float* x = X + size_t(t) * cols;
      float s = hsum(acc);
      for (int c = body; c < cols; ++c) s += wval(wr, size_t(c)) * x[c];
      Y[size_t(t) * W.rows + r + i] = s;
    };
    for (int t = 0; t < T; t += kTileTokens) {
      const int g = std::min(kTileTokens, T - t);
      const float* xg = xt + size_t(t) * body;
      if (gr == kTileRows && g == kTileTokens) {
        vf acc[kTileRows][kTileTokens];
        for (auto& row : acc)
          for (auto& v : row) v = splat(0);
        plain_tile(panel.data(), gr, xg, g, body, acc);
        for (int i = 0; i < kTileRows; ++i)
          for (int j = 0; j < kTileTokens; ++j) out(i, t + j, acc[i][j]);
      } else {
        for (int i = 0; i < gr; ++i)
          for (int j = 0; j < g; ++j) {
            vf acc[1][1] = {{splat(0)}};
            plain_tile(panel.data() + i * kLanes, gr, xg + j * kLanes, g, body, acc);
            out(i, t + j, acc[0][0]);
          }
      }
    }
  }
}

// Columns [c0, c0 + CB * kBlock) of Y for TT rows of X: every output a sum over the
// rows of W in order.
template <DType D, int CB, int TT>
inline void vecmat_block(const typename Pair<D>::T* w, int rows, int cols, const float* X, float* Y, int c0) {
  vf acc[TT][CB][2];
  for (int t = 0; t < TT; ++t)
    for (int j = 0; j < CB; ++j) acc[t][j][0] = acc[t][j][1] = splat(0);
  for (int r = 0; r < rows; ++r) {
    const auto* wr = w + size_t(r) * cols + c0;
    vf xs[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) xs[t] = load_splat(X + size_t(t) * rows + r);
#pragma GCC unroll 8
    for (int j = 0; j < CB; ++j) {
      vf a, b;
      Pair<D>::load(wr + j * kBlock, a, b);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) {
        acc[t][j][0] = madd(xs[t], a, acc[t][j][0]);
        acc[t][j][1] = madd(xs[t], b, acc[t][j][1]);
      }
    }
  }
  for (int t = 0; t < TT; ++t)
    for (int j = 0; j < CB; ++j) Pair<D>::store(Y + size_t(t) * cols + c0 + j * kBlock, acc[t][j][0], acc[t][j][1]);
}

template <DType D, int TT>
void vecmat_tokens(const Matrix& W, const float* X, float* Y) {
  const int rows = W.rows, cols = W.cols, body = cols - cols % kBlock;
  const auto* w = Pair<D>::data(W);
  constexpr int CB = TT == 1 ? 4 : 2;
  int c = 0;
  for (; c + CB * kBlock <= body; c += CB * kBlock) vecmat_block<D, CB, TT>(w, rows, cols, X, Y, c);
  for (; c < body; c += kBlock) vecmat_block<D, 1, TT>(w, rows, cols, X, Y, c);
  for (; c < cols; ++c)
    for (int t = 0; t < TT; ++t) {
      float s = 0;
      for (int r = 0; r < rows; ++r) s += X[size_t(t) * rows + r] * wval(w + size_t(r) * cols, size_t(c));
      Y[size_t(t) * cols + c] = s;
    }
}

// One row of X (T = 1), the rows of W read one after the other (a sequential stream)
// into running sums kept in `acc` (pair order), two rows per pass over the sums. The
// same order of sums as vecmat_block. Cut into passes so that several of them can be
// interleaved (vecmat_multi): rows_pass adds rows [r, r + 2) (or the last one), finish
// writes y.
template <DType D>
void rows_pass(const Matrix& W, const float* x, float* a, int r) {
  const int cols = W.cols, body = cols - cols % kBlock;
  const auto* w0 = Pair<D>::data(W) + size_t(r) * cols;
  if (r + 2 <= W.rows) {
    const vf x0 = load_splat(x + r), x1 = load_splat(x + r + 1);
    const auto* w1 = w0 + cols;
    for (int c = 0; c < body; c += kBlock) {
      vf p, q, u, v;
      Pair<D>::load(w0 + c, p, q);
      Pair<D>::load(w1 + c, u, v);
      store(a + c, madd(x1, u, madd(x0, p, load(a + c))));
      store(a + c + kLanes, madd(x1, v, madd(x0, q, load(a + c + kLanes))));
    }
  } else {
    const vf x0 = load_splat(x + r);
    for (int c = 0; c < body; c += kBlock) {
      vf p, q;
      Pair<D>::load(w0 + c, p, q);
      store(a + c, madd(x0, p, load(a + c)));
      store(a + c + kLanes, madd(x0, q, load(a + c + kLanes)));
    }
  }
}

template <DType D>
void rows_finish(const Matrix& W, const float* x, const float* a, float* y) {
  const int rows = W.rows, cols = W.cols, body = cols - cols % kBlock;
  const auto* w = Pair<D>::data(W);
  for (int c = 0; c < body; c += kBlock) Pair<D>::store(y + c, load(a + c), load(a + c + kLanes));
  for (int c = body; c < cols; ++c) {
    float s = 0;
    for (int i = 0; i < rows; ++i) s += x[i] * wval(w + size_t(i) * cols, size_t(c));
    y[c] = s;
  }
}

// Several T = 1 vecmats on the calling thread, their rows read in lockstep (two rows of
// each per step): one sequential stream per matrix at the same time. A LoRA matrix is
// too small (50-200 KB) for the prefetchers to ramp up on a single stream. Each output
// is summed as by vecmat_rowwise. All jobs' matrices are F32 or BF16.
constexpr int kMaxLockstep = 8;
void rowwise_lockstep(const VecmatJob* const* jobs, int n) {
  size_t total = 0;
  int rows = 0;
  for (int j = 0; j < n; ++j) total += size_t(jobs[j]->W->cols), rows = std::max(rows, jobs[j]->W->rows);
  std::vector<float> acc(total, 0.0f);
  for (int r = 0; r < rows; r += 2) {
    float* a = acc.data();
    for (int j = 0; j < n; ++j) {
      const Matrix& W = *jobs[j]->W;
      if (r < W.rows) {
        if (W.dtype == DType::BF16) rows_pass<DType::BF16>(W, jobs[j]->X, a, r);
        else rows_pass<DType::F32>(W, jobs[j]->X, a, r);
      }
      a += W.cols;
    }
  }
  const float* a = acc.data();
  for (int j = 0; j < n; ++j) {
    const Matrix& W = *jobs[j]->W;
    if (W.dtype == DType::BF16) rows_finish<DType::BF16>(W, jobs[j]->X, a, jobs[j]->Y);
    else rows_finish<DType::F32>(W, jobs[j]->X, a, jobs[j]->Y);
    a += W.cols;
  }
}

template <DType D>
void vecmat_rowwise(const Matrix& W, const float* x, float* y) {
  std::vector<float> acc(size_t(W.cols), 0.0f);
  for (int r = 0; r < W.rows; r += 2) rows_pass<D>(W, x, acc.data(), r);
  rows_finish<D>(W, x, acc.data(), y);
}

template <DType D>
void vecmat_impl(const Matrix& W, const float* X, int T, float* Y) {
  // Decode, W wider than tall (the second matrix of a LoRA): stream W row by row.
  if (T == 1) return vecmat_rowwise<D>(W, X, Y);
  int t = 0;
  for (; t + 2 <= T; t += 2) vecmat_tokens<D, 2>(W, X + size_t(t) * W.rows, Y + size_t(t) * W.cols);
  for (; t < T; ++t) vecmat_tokens<D, 1>(W, X + size_t(t) * W.rows, Y + size_t(t) * W.cols);
}

float dot(const float* a, const float* b, int n) {
  const int body = n - n % kLanes;
  vf acc = splat(0);
  for (int i = 0; i < body; i += kLanes) acc = madd(load(a + i), load(b + i), acc);
  float s = hsum(acc);
  for (int i = body; i < n; ++i) s += a[i] * b[i];
  return s;
}


// ---- quantized weights (Q8_0, Q4_0; layout in quant.h)
// x is quantized too, per row of x: xq = round(x / sx) in int16 with sx = max|x| / 32767
// (15 bits: far finer than the weights, so the loss is the weights' own). Per weight
// block b: isum = dot(q_b, xq_b) exactly in int32 lanes; acc += float(isum) * scale_b;
// y = hsum(acc) * sx. One order for every form (matvec, matmul, threads).
constexpr float kXQuantMax = 32767.0f;

// Row t of X (n values) into xq[t * n ...], its scale into sx[t]. A row with NaN or
// infinity gets sx = NaN, so its outputs are NaN as with float weights.
void quantize_x(const float* X, int T, int n, std::vector<int16_t>& xq, std::vector<float>& sx) {
  xq.resize(size_t(T) * n);
  sx.resize(size_t(T));
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * n;
    int16_t* q = xq.data() + size_t(t) * n;
    float amax = 0;
    bool finite = true;
    for (int i = 0; i < n; ++i) {
      finite &= std::isfinite(x[i]);
      amax = std::max(amax, std::fabs(x[i]));
    }
    if (!finite) {
      std::fill(q, q + n, int16_t(0));
      sx[t] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    // In double: 32767 / amax overflows float for subnormal amax (and |x * inv| <= 32767).
    const double inv = amax > 0 ? double(kXQuantMax) / double(amax) : 0.0;
    for (int i = 0; i < n; ++i) q[i] = int16_t(std::nearbyint(double(x[i]) * inv));
    sx[t] = amax / kXQuantMax;
  }
}

template <DType D>
inline qblock widen(const uint8_t* p) {
  if constexpr (D == DType::Q8_0) return widen_q8(p);
  else return widen_q4(p);
}
template <DType D>
constexpr size_t kQBlockBytes = D == DType::Q8_0 ? kQuantBlock : kQuantBlock / 2;

// R weight rows (q rows qstride bytes apart, scale rows sstride floats apart) with TT
// rows of xq (xstride apart, scales sx[0..TT)): Y[r * yr + t * yt].
template <DType D, int R, int TT>
inline void qdot(const uint8_t* q, size_t qstride, const float* sc, size_t sstride, int nb, const int16_t* xq,
                 size_t xstride, const float* sx, float* Y, size_t yr, size_t yt) {
  vf acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = splat(0);
  for (int b = 0; b < nb; ++b) {
    qblock x[TT];
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) x[t] = load_q16(xq + t * xstride + size_t(b) * kQuantBlock);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const qblock w = widen<D>(q + r * qstride + b * kQBlockBytes<D>);
      const vf s = load_splat(sc + r * sstride + b);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[r][t] = madd(to_float(dot(w, x[t])), s, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) Y[r * yr + t * yt] = hsum(acc[r][t]) * sx[t];
}

// Rows [r0, r1) of W x: kStreams sequential streams, as matvec_rows.
template <DType D>
void qmatvec_rows(const Matrix& W, const int16_t* xq, const float* sx, float* y, int r0, int r1) {
  const int nb = W.cols / kQuantBlock;
  const size_t rq = size_t(nb) * kQBlockBytes<D>;  // q bytes per row
  const int n = (r1 - r0) / kStreams;
  for (int i = 0; i < n; ++i) {
    const size_t r = size_t(r0) + i;
    qdot<D, kStreams, 1>(W.q() + r * rq, size_t(n) * rq, W.scale + r * nb, size_t(n) * nb, nb, xq, 0, sx, y + r,
                         size_t(n), 0);
  }
  for (int r = r0 + n * kStreams; r < r1; ++r)
    qdot<D, 1, 1>(W.q() + size_t(r) * rq, 0, W.scale + size_t(r) * nb, 0, nb, xq, 0, sx, y + r, 0, 0);
}

// T rows of xq (row stride n) into groups of kQTileTokens rows, interleaved by blocks of
// 32 values: group g0 at out + g0 * n, its row j's block b at (b * gs + j) * 32.
constexpr int kQTileTokens = 4;
void interleave_q(const int16_t* src, int T, int n, std::vector<int16_t>& out) {
  out.resize(size_t(T) * n);
  for (int g0 = 0; g0 < T; g0 += kQTileTokens) {
    const int gs = std::min(kQTileTokens, T - g0);
    int16_t* o = out.data() + size_t(g0) * n;
    for (int c = 0; c < n; c += kQuantBlock)
      for (int j = 0; j < gs; ++j)
        std::memcpy(o + size_t(c) * gs + j * kQuantBlock, src + size_t(g0 + j) * n + c, kQuantBlock * sizeof(int16_t));
  }
}

// One weight row (q: int8 blocks, sc: their scales) by TTT tokens from token j0 of a
// token group of g at x: running sums in registers, the row's block widened once for
// the TTT tokens.
template <int TTT>
inline void quant_tile(const uint8_t* q, const float* sc, int nb, const int16_t* x, int g, vf (&acc)[TTT]) {
  const size_t xs = size_t(g) * kQuantBlock;
  for (int b = 0; b < nb; ++b, x += xs) {
    const qblock w = widen_q8(q + b * kQuantBlock);
    const vf s = load_splat(sc + b);
#pragma GCC unroll 8
    for (int j = 0; j < TTT; ++j) acc[j] = madd(to_float(dot(w, load_q16(x + j * kQuantBlock))), s, acc[j]);
  }
}

// Y[t][r] for rows [r0, r1) and all T tokens of xt (in groups: interleave_q), one weight
// row at a time against each group of tokens (1 x 4 measured ahead of 3 x 2 with x rows
// apart, and of tiles over rows widened to int16: the loads that widen int8 are one
// instruction in wasm and on x86). Q4_0: the row is unpacked to int8 once (unpack_q4),
// not for every group. Every output summed in the order of qdot (a matmul row is the
// matvec of that row, bit for bit).
template <DType D>
void qmatmul_rows(const Matrix& W, const int16_t* xt, const float* sx, int T, float* Y, int r0, int r1) {
  const int nb = W.cols / kQuantBlock, cols = W.cols;
  const size_t rq = size_t(nb) * kQBlockBytes<D>;
  std::vector<int8_t> row(D == DType::Q4_0 ? size_t(cols) : 0);
  for (int r = r0; r < r1; ++r) {
    const uint8_t* q = W.q() + size_t(r) * rq;
    if constexpr (D == DType::Q4_0) {
      for (int b = 0; b < nb; ++b) unpack_q4(q + size_t(b) * kQBlockBytes<D>, row.data() + b * kQuantBlock);
      q = reinterpret_cast<const uint8_t*>(row.data());
    }
    const float* sc = W.scale + size_t(r) * nb;
    for (int t = 0; t < T; t += kQTileTokens) {
      const int g = std::min(kQTileTokens, T - t);
      const int16_t* xg = xt + size_t(t) * cols;
      if (g == kQTileTokens) {
        vf acc[kQTileTokens];
        for (auto& v : acc) v = splat(0);
        quant_tile(q, sc, nb, xg, g, acc);
        for (int j = 0; j < g; ++j) Y[size_t(t + j) * W.rows + r] = hsum(acc[j]) * sx[t + j];
      } else {
        for (int j = 0; j < g; ++j) {
          vf acc[1] = {splat(0)};
          quant_tile(q, sc, nb, xg + j * kQuantBlock, g, acc);
          Y[size_t(t + j) * W.rows + r] = hsum(acc[0]) * sx[t + j];
        }
      }
    }
  }
}

// x prepared once per call by the calling thread: in pair order (plain types) or
// quantized (quantized types). Buffers live for the call only: no kernel keeps scratch
// memory between calls, so the heap in use after a call does not depend on which thread
// ran what.
struct Prepared {
  const float* X = nullptr;
  std::vector<float> pairs;  // X in pair order (BF16), else empty (F32: X as it is)
  std::vector<int16_t> xq;   // quantized types: X as int16, (T, cols)
  std::vector<float> sx;     // and its scale per row, (T)
  std::vector<int16_t> xqt;  // quantized types, T > 1: xq in groups of kQTileTokens (interleave_q)
  std::vector<float> xt;     // plain types, T > 1: the pairs in groups of kTileTokens (interleave)
  const void* relaxed = nullptr;  // Q4_0, T > 1, the relaxed-SIMD module loaded: it does the product
  relaxed::X8 x8;                 // and x quantized for it
  const float* xp() const { return pairs.empty() ? X : pairs.data(); }
};

// The kernels of each weight type, in the spirit of ggml's type traits: y = W x over the
// rows [r0, r1) (x prepared by prepare()), and Y = W X for T tokens. One entry per DType,
// in its order; F16 is never a Matrix's type (F16 files are held as F32).
struct KernelTraits {
  void (*matvec)(const Matrix& W, const Prepared& x, float* y, int r0, int r1);
  void (*matmul)(const Matrix& W, const Prepared& x, int T, float* Y, int r0, int r1);
};

template <DType D>
void plain_matvec(const Matrix& W, const Prepared& x, float* y, int r0, int r1) { matvec_rows<D>(W, x.xp(), y, r0, r1); }
template <DType D>
void plain_matmul(const Matrix& W, const Prepared& x, int T, float* Y, int r0, int r1) {
  matmul_rows<D>(W, x.xt.data(), x.X, T, Y, r0, r1);
}
template <DType D>
void quant_matvec(const Matrix& W, const Prepared& x, float* y, int r0, int r1) {
  qmatvec_rows<D>(W, x.xq.data(), x.sx.data(), y, r0, r1);
}
template <DType D>
void quant_matmul(const Matrix& W, const Prepared& x, int T, float* Y, int r0, int r1) {
  if (x.relaxed) return relaxed::q4_matmul(x.relaxed, W, x.x8, T, Y, r0, r1);
  qmatmul_rows<D>(W, x.xqt.data(), x.sx.data(), T, Y, r0, r1);
}

constexpr KernelTraits kKernels[kDTypeCount] = {
    {plain_matvec<DType::F32>, plain_matmul<DType::F32>},    // F32
    {nullptr, nullptr},                                      // F16
    {plain_matvec<DType::BF16>, plain_matmul<DType::BF16>},  // BF16
    {quant_matvec<DType::Q8_0>, quant_matmul<DType::Q8_0>},  // Q8_0
    {quant_matvec<DType::Q4_0>, quant_matmul<DType::Q4_0>},  // Q4_0
};

// Checked on the calling thread (prepare()), so that the pool's threads never throw.
void check_kernels(const Matrix& W) {
  if (!kKernels[int(W.dtype)].matvec) throw Error(std::string("no matrix kernels for weight type ") + dtype_name(W.dtype));
}

Prepared prepare(const Matrix& W, const float* X, int T) {
  check_kernels(W);
  Prepared p;
  p.X = X;
  const int n = W.cols;
  // The prefill of Q4_0 weights goes to the relaxed-SIMD module where the host runs it
  // (kernels/relaxed/relaxed.h: int8 x per block, 16 multiply-adds per instruction),
  // else to the SIMD128 kernels below.
  if (W.dtype == DType::Q4_0 && T > 1 && (p.relaxed = relaxed::module())) {
    relaxed::quantize_x8(X, T, n, p.x8);
  } else if (is_quantized(W.dtype)) {
    quantize_x(X, T, n, p.xq, p.sx);
    if (T > 1) interleave_q(p.xq.data(), T, n, p.xqt);
  } else {
    pair_order(W.dtype, X, T, n, p.pairs);
    if (T > 1) interleave(p.xp(), T, n, n - n % kBlock, kTileTokens, p.xt);
  }
  return p;
}

void matvec_range(const Matrix& W, const Prepared& x, float* y, int r0, int r1) { kKernels[int(W.dtype)].matvec(W, x, y, r0, r1); }

void matmul_range(const Matrix& W, const Prepared& x, int T, float* Y, int r0, int r1) {
  kKernels[int(W.dtype)].matmul(W, x, T, Y, r0, r1);
}

}  // namespace

void matvec(const Matrix& W, const float* x, float* y) { matvec_range(W, prepare(W, x, 1), y, 0, W.rows); }

void matvec(const Matrix& W, const float* x, float* y, ThreadPool& pool) {
  if (pool.size() == 1 || size_t(W.rows) * W.cols < g_parallel_min) return matvec(W, x, y);
  const Prepared p = prepare(W, x, 1);
  pool.parallel_for(W.rows, 4, [&](int b, int e) { matvec_range(W, p, y, b, e); });
}

void matmul(const Matrix& W, const float* X, int T, float* Y) {
  if (T == 1) return matvec(W, X, Y);
  matmul_range(W, prepare(W, X, T), T, Y, 0, W.rows);
}

void matmul(const Matrix& W, const float* X, int T, float* Y, ThreadPool& pool) {
  if (T == 1) return matvec(W, X, Y, pool);
  if (pool.size() == 1 || size_t(W.rows) * W.cols * T < g_parallel_min) return matmul(W, X, T, Y);
  const Prepared p = prepare(W, X, T);
  pool.parallel_for(W.rows, is_quantized(W.dtype) ? 1 : kTileRows, [&](int b, int e) { matmul_range(W, p, T, Y, b, e); });
}

void vecmat(const Matrix& W, const float* X, int T, float* Y) {
  if (W.dtype == DType::F32) vecmat_impl<DType::F32>(W, X, T, Y);
  else if (W.dtype == DType::BF16) vecmat_impl<DType::BF16>(W, X, T, Y);
  else scalar::vecmat(W, X, T, Y);  // quantized LoRAs: the models never make them
}

void vecmat_multi(const VecmatJob* jobs, int n, int T, ThreadPool& pool) {
  if (n == 0) return;
  bool plain = true;  // F32 / BF16 only (the lockstep form does not take quantized LoRAs)
  for (int j = 0; j < n; ++j) plain &= jobs[j].W->dtype == DType::F32 || jobs[j].W->dtype == DType::BF16;
  size_t total = 0;
  for (int j = 0; j < n; ++j) total += size_t(jobs[j].W->rows) * jobs[j].W->cols * T;
  const bool alone = pool.size() == 1 || total < g_parallel_min / 2;
  if (T == 1 && plain && n <= kMaxLockstep) {
    // Decode: the jobs dealt round-robin to min(n, threads) parts, each part's jobs read
    // in lockstep.
    const int parts = alone ? 1 : std::min(n, pool.size());
    pool.run(parts, [&](int p) {
      const VecmatJob* mine[kMaxLockstep];
      int m = 0;
      for (int j = p; j < n; j += parts) mine[m++] = &jobs[j];
      rowwise_lockstep(mine, m);
    });
    return;
  }
  if (alone) {
    for (int j = 0; j < n; ++j) vecmat(*jobs[j].W, jobs[j].X, T, jobs[j].Y);
    return;
  }
  // Parts: every job whole (T = 1) or cut into runs of x rows (pairs, as vecmat pairs
  // them); each output is summed in the same order whoever computes it.
  const int pairs = (T + 1) / 2;
  const int splits = std::min(pairs, pool.size());
  pool.run(n * splits, [&](int p) {
    const VecmatJob& job = jobs[p / splits];
    const int s = p % splits;
    const int t0 = pairs * s / splits * 2, t1 = std::min(T, pairs * (s + 1) / splits * 2);
    if (t0 < t1)
      vecmat(*job.W, job.X + size_t(t0) * job.W->rows, t1 - t0, job.Y + size_t(t0) * job.W->cols);
  });
}

void layer_norm(const float* x, const float* w, const float* b, int n, float eps, float* y) {
  const int body = n - n % kLanes;
  vf acc = splat(0);
  for (int i = 0; i < body; i += kLanes) acc = add(acc, load(x + i));
  float sum = hsum(acc);
  for (int i = body; i < n; ++i) sum += x[i];
  const float mean = sum / float(n);
  const vf m = splat(mean);
  acc = splat(0);
  for (int i = 0; i < body; i += kLanes) {
    const vf d = sub(load(x + i), m);
    acc = madd(d, d, acc);
  }
  float var = hsum(acc);
  for (int i = body; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / float(n) + eps);
  const vf vinv = splat(inv);
  for (int i = 0; i < body; i += kLanes)
    store(y + i, madd(mul(sub(load(x + i), m), vinv), load(w + i), load(b + i)));
  for (int i = body; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

void relu_square(float* x, size_t n) {
  const size_t body = n - n % kLanes;
  const vf zero = splat(0);
  for (size_t i = 0; i < body; i += kLanes) {
    const vf h = pmax(load(x + i), zero);
    store(x + i, mul(h, h));
  }
  for (size_t i = body; i < n; ++i) {
    const float h = std::max(x[i], 0.0f);
    x[i] = h * h;
  }
}

namespace {

// One token of the WKV recurrence for one head (N % kLanes == 0): S (N, N) in place, all
// vectors (N), y (N). Two rows of S per pass share the loads of w, kk*a, k and r.
void wkv_head(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
              const float* a, int N, float* y, float* ab) {
  for (int q = 0; q < N; ++q) ab[q] = kk[q] * a[q];
  int p = 0;
  for (; p + 2 <= N; p += 2) {
    float* row0 = S + size_t(p) * N;
    float* row1 = row0 + N;
    const vf sa0 = splat(-dot(row0, kk, N)), sa1 = splat(-dot(row1, kk, N));
    const vf vp0 = splat(v[p]), vp1 = splat(v[p + 1]);
    vf out0 = splat(0), out1 = splat(0);
    for (int q = 0; q < N; q += kLanes) {
      const vf wq = load(w + q), abq = load(ab + q), kq = load(k + q), rq = load(r + q);
      vf s0 = madd(load(row0 + q), wq, mul(sa0, abq));
      vf s1 = madd(load(row1 + q), wq, mul(sa1, abq));
      s0 = madd(vp0, kq, s0);
      s1 = madd(vp1, kq, s1);
      store(row0 + q, s0);
      store(row1 + q, s1);
      out0 = madd(s0, rq, out0);
      out1 = madd(s1, rq, out1);
    }
    y[p] = hsum(out0);
    y[p + 1] = hsum(out1);
  }
  for (; p < N; ++p) {
    float* row = S + size_t(p) * N;
    const vf sa = splat(-dot(row, kk, N));
    const vf vp = splat(v[p]);
    vf out = splat(0);
    for (int q = 0; q < N; q += kLanes) {
      vf s = madd(load(row + q), load(w + q), mul(sa, load(ab + q)));
      s = madd(vp, load(k + q), s);
      store(row + q, s);
      out = madd(s, load(r + q), out);
    }
    y[p] = hsum(out);
  }
}

}  // namespace

void wkv(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
         const float* a, int H, int N, float* y) {
  if (N % kLanes) return scalar::wkv(S, r, w, k, v, kk, a, H, N, y);
  std::vector<float> ab(static_cast<size_t>(N));
  for (int h = 0; h < H; ++h) {
    const int o = h * N;
    wkv_head(S + size_t(o) * N, r + o, w + o, k + o, v + o, kk + o, a + o, N, y + o, ab.data());
  }
}

void wkv_seq(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
             const float* a, int T, int H, int N, float* y, ThreadPool& pool) {
  const size_t C = size_t(H) * N;
  if (N % kLanes) {
    for (int t = 0; t < T; ++t) {
      const size_t o = size_t(t) * C;
      scalar::wkv(S, r + o, w + o, k + o, v + o, kk + o, a + o, H, N, y + o);
    }
    return;
  }
  // Heads are independent: each runs its T tokens in order with its state in L1.
  auto heads = [&](int h0, int h1) {
    std::vector<float> ab(static_cast<size_t>(N));
    for (int h = h0; h < h1; ++h) {
      float* Sh = S + size_t(h) * N * N;
      for (int t = 0; t < T; ++t) {
        const size_t o = size_t(t) * C + size_t(h) * N;
        wkv_head(Sh, r + o, w + o, k + o, v + o, kk + o, a + o, N, y + o, ab.data());
      }
    }
  };
  // (Each state element costs a few multiply-adds: a decoded token's wkv is worth splitting.)
  if (pool.size() == 1 || H == 1 || size_t(T) * C * N * 4 < g_parallel_min) return heads(0, H);
  pool.parallel_for(H, 1, heads);
}

}  // namespace kernels
}  // namespace rwkv
