#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "simd.h"

namespace rwkv {

void Matrix::row(int r, float* out) const {
  if (dtype == DType::F32) {
    std::memcpy(out, f32() + size_t(r) * cols, sizeof(float) * cols);
  } else {
    const uint16_t* p = bf16() + size_t(r) * cols;
    for (int c = 0; c < cols; ++c) out[c] = bf16_to_f32(p[c]);
  }
}

namespace kernels {

const char* simd_name() { return RWKV_SIMD; }

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

}  // namespace scalar

// ---------------------------------------------------------------- SIMD mapping
using namespace simd;

namespace {

inline vf load_w(const Matrix& W, size_t i) {
  return W.dtype == DType::F32 ? load(W.f32() + i) : load_bf16(W.bf16() + i);
}
inline float scalar_w(const Matrix& W, size_t i) {
  return W.dtype == DType::F32 ? W.f32()[i] : bf16_to_f32(W.bf16()[i]);
}

// Dot products of rows r0..r0+3 of W with x, the decode hot path: each x vector is
// loaded once for four rows.
template <DType D>
void matvec4(const Matrix& W, int r0, const float* x, float* y) {
  const size_t cols = size_t(W.cols);
  const size_t body = cols - cols % kLanes;
  vf a0 = splat(0), a1 = splat(0), a2 = splat(0), a3 = splat(0);
  const size_t b0 = size_t(r0) * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
  auto wl = [&](size_t i) { return D == DType::F32 ? load(W.f32() + i) : load_bf16(W.bf16() + i); };
  for (size_t c = 0; c < body; c += kLanes) {
    const vf xv = load(x + c);
    a0 = madd(wl(b0 + c), xv, a0);
    a1 = madd(wl(b1 + c), xv, a1);
    a2 = madd(wl(b2 + c), xv, a2);
    a3 = madd(wl(b3 + c), xv, a3);
  }
  float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (size_t c = body; c < cols; ++c) {
    s0 += scalar_w(W, b0 + c) * x[c];
    s1 += scalar_w(W, b1 + c) * x[c];
    s2 += scalar_w(W, b2 + c) * x[c];
    s3 += scalar_w(W, b3 + c) * x[c];
  }
  y[r0] = s0, y[r0 + 1] = s1, y[r0 + 2] = s2, y[r0 + 3] = s3;
}

float dot_row(const Matrix& W, int r, const float* x) {
  const size_t cols = size_t(W.cols), base = size_t(r) * cols;
  const size_t body = cols - cols % kLanes;
  vf acc = splat(0);
  for (size_t c = 0; c < body; c += kLanes) acc = madd(load_w(W, base + c), load(x + c), acc);
  float s = hsum(acc);
  for (size_t c = body; c < cols; ++c) s += scalar_w(W, base + c) * x[c];
  return s;
}

float dot(const float* a, const float* b, int n) {
  const int body = n - n % kLanes;
  vf acc = splat(0);
  for (int i = 0; i < body; i += kLanes) acc = madd(load(a + i), load(b + i), acc);
  float s = hsum(acc);
  for (int i = body; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void matvec(const Matrix& W, const float* x, float* y) {
  const int body = W.rows - W.rows % 4;
  for (int r = 0; r < body; r += 4) {
    if (W.dtype == DType::F32) matvec4<DType::F32>(W, r, x, y);
    else matvec4<DType::BF16>(W, r, x, y);
  }
  for (int r = body; r < W.rows; ++r) y[r] = dot_row(W, r, x);
}

void matmul(const Matrix& W, const float* X, int T, float* Y) {
  if (T == 1) return matvec(W, X, Y);
  // Blocks of 4 weight rows, widened to f32 once, meet pairs of token rows: 8 running
  // sums share each load. W is read once per call whatever T is.
  const int cols = W.cols;
  const int body = cols - cols % kLanes;
  std::vector<float> wbuf(size_t(4) * cols);
  for (int r0 = 0; r0 < W.rows; r0 += 4) {
    const int nr = std::min(4, W.rows - r0);
    for (int i = 0; i < 4; ++i) {
      if (i < nr) W.row(r0 + i, wbuf.data() + size_t(i) * cols);
      else std::fill_n(wbuf.data() + size_t(i) * cols, cols, 0.0f);
    }
    const float *w0 = wbuf.data(), *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    for (int t = 0; t < T; t += 2) {
      const float* x0 = X + size_t(t) * cols;
      const float* x1 = t + 1 < T ? x0 + cols : x0;
      vf a00 = splat(0), a01 = splat(0), a10 = splat(0), a11 = splat(0);
      vf a20 = splat(0), a21 = splat(0), a30 = splat(0), a31 = splat(0);
      for (int c = 0; c < body; c += kLanes) {
        const vf u = load(x0 + c), v = load(x1 + c);
        vf w = load(w0 + c);
        a00 = madd(w, u, a00), a01 = madd(w, v, a01);
        w = load(w1 + c);
        a10 = madd(w, u, a10), a11 = madd(w, v, a11);
        w = load(w2 + c);
        a20 = madd(w, u, a20), a21 = madd(w, v, a21);
        w = load(w3 + c);
        a30 = madd(w, u, a30), a31 = madd(w, v, a31);
      }
      float s[4][2] = {{hsum(a00), hsum(a01)}, {hsum(a10), hsum(a11)}, {hsum(a20), hsum(a21)}, {hsum(a30), hsum(a31)}};
      for (int c = body; c < cols; ++c)
        for (int i = 0; i < 4; ++i) {
          s[i][0] += wbuf[size_t(i) * cols + c] * x0[c];
          s[i][1] += wbuf[size_t(i) * cols + c] * x1[c];
        }
      for (int i = 0; i < nr; ++i) {
        Y[size_t(t) * W.rows + r0 + i] = s[i][0];
        if (t + 1 < T) Y[size_t(t + 1) * W.rows + r0 + i] = s[i][1];
      }
    }
  }
}

void vecmat(const Matrix& W, const float* X, int T, float* Y) {
  const size_t cols = size_t(W.cols);
  const size_t body = cols - cols % kLanes;
  std::fill(Y, Y + size_t(T) * cols, 0.0f);
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * W.rows;
    float* y = Y + size_t(t) * cols;
    for (int r = 0; r < W.rows; ++r) {
      const vf xr = splat(x[r]);
      const size_t base = size_t(r) * cols;
      for (size_t c = 0; c < body; c += kLanes) store(y + c, madd(xr, load_w(W, base + c), load(y + c)));
      for (size_t c = body; c < cols; ++c) y[c] += x[r] * scalar_w(W, base + c);
    }
  }
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

void wkv(float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
         const float* a, int H, int N, float* y) {
  if (N % kLanes) return scalar::wkv(S, r, w, k, v, kk, a, H, N, y);
  std::vector<float> ab(N);  // kk * a of one head
  for (int h = 0; h < H; ++h) {
    const int o = h * N;
    for (int q = 0; q < N; ++q) ab[q] = kk[o + q] * a[o + q];
    for (int p = 0; p < N; ++p) {
      float* row = S + (size_t(h) * N + p) * N;
      const vf sa = splat(-dot(row, kk + o, N));
      const vf vp = splat(v[o + p]);
      vf out = splat(0);
      for (int q = 0; q < N; q += kLanes) {
        vf s = madd(load(row + q), load(w + o + q), mul(sa, load(ab.data() + q)));
        s = madd(vp, load(k + o + q), s);
        store(row + q, s);
        out = madd(s, load(r + o + q), out);
      }
      y[o + p] = hsum(out);
    }
  }
}

}  // namespace kernels
}  // namespace rwkv
