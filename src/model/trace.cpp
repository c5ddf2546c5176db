#include "model/trace.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/mathfn.h"
#include "kernels/kernels.h"

namespace rwkv {

void Trace::begin(int T) {
  first_ = tokens();
  data_.resize(data_.size() + size_t(T) * record_size(), 0.0f);
}

void Trace::wkv(int i, float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
                const float* a, const float* v_lora, const float* v0, int T, float* y, ThreadPool& pool) {
  const int C = c_.C, H = c_.H, N = c_.N;
  for (int t = 0; t < T; ++t) {
    const size_t o = size_t(t) * C;
    kernels::wkv_seq(S, r + o, w + o, k + o, v + o, kk + o, a + o, 1, H, N, y + o, pool);
    // Sums in double over the head's channels, stored as float.
    pool.parallel_for(H, 1, [&](int h0, int h1) {
      for (int h = h0; h < h1; ++h) {
        const size_t c0 = o + size_t(h) * N;
        double w_sum = 0, w_sq = 0, a_sum = 0, mix_sum = 0, k_sq = 0, v_sq = 0, s_sq = 0;
        for (int j = 0; j < N; ++j) {
          w_sum += w[c0 + j];
          w_sq += double(w[c0 + j]) * w[c0 + j];
          a_sum += a[c0 + j];
          k_sq += double(k[c0 + j]) * k[c0 + j];
          v_sq += double(v[c0 + j]) * v[c0 + j];
          if (i > 0) mix_sum += math::sigmoid(v0[h * N + j] + v_lora[c0 + j]);
        }
        const float* Sh = S + size_t(h) * N * N;
        for (int j = 0; j < N * N; ++j) s_sq += double(Sh[j]) * Sh[j];
        const double w_mean = w_sum / N, s_norm = std::sqrt(s_sq);
        float* f = head(t, i, h);
        f[kStateNorm] = float(s_norm);
        f[kDecayMean] = float(w_mean);
        f[kDecayStd] = float(std::sqrt(std::max(0.0, w_sq / N - w_mean * w_mean)));
        f[kHalfLife] = w_mean < 1 ? float(std::log(0.5) / std::log(w_mean)) : std::numeric_limits<float>::infinity();
        f[kRate] = float(a_sum / N);
        f[kUpdate] = s_norm > 0 ? float(std::sqrt(k_sq) * std::sqrt(v_sq) / s_norm) : 0.0f;
        f[kValueMix] = i > 0 ? float(mix_sum / N) : std::numeric_limits<float>::quiet_NaN();
      }
    });
  }
}

void Trace::residual(int i, const float* x, int T) {
  const int C = c_.C;
  for (int t = 0; t < T; ++t) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += double(x[size_t(t) * C + c]) * x[size_t(t) * C + c];
    record(t)[size_t(c_.n_layer) * c_.H * kTraceFields + i] = float(std::sqrt(ss));
  }
}

}  // namespace rwkv
