#include "model/runner.h"

#include <algorithm>
#include <cmath>

#include "base/mathfn.h"
#include "kernels/kernels.h"

namespace rwkv {

namespace {
constexpr float kLayerNormEps = 1e-5f;
constexpr float kGroupNormEps = 64e-5f;
constexpr float kDecayScale = -0.606531f;  // -exp(-0.5)
}  // namespace

Runner::Runner(const Model& model, int max_chunk)
    : model_(model), c_(model.config()), max_chunk_(std::max(1, max_chunk)) {
  const size_t TC = size_t(max_chunk_) * c_.C;
  for (auto* b : {&x_, &xn_, &xr_, &xw_, &xk_, &xv_, &xa_, &xg_, &r_, &w_, &k_, &v_, &a_, &g_, &kk_, &v_first_, &y_, &tmp_})
    b->resize(TC);
  lora_.resize(size_t(max_chunk_) * (c_.Dw + c_.Da + c_.Dv + c_.Dg));
  hidden_.resize(size_t(max_chunk_) * c_.F);
  logits_.resize(c_.V);
  pool_ = std::make_unique<ThreadPool>(1);
}

void Runner::set_threads(int n) {
  if (n != pool_->size()) {
    pool_.reset();
    pool_ = std::make_unique<ThreadPool>(n);
  }
}

std::span<const float> Runner::step(State& state, int32_t token) {
  return prefill(state, std::span<const int32_t>(&token, 1));
}

std::span<const float> Runner::prefill(State& state, std::span<const int32_t> tokens, float* all_logits) {
  if (state.size() != c_.state_size())
    throw Error("state has " + std::to_string(state.size()) + " floats but this model needs " +
                std::to_string(c_.state_size()));
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c_.V)
      throw Error("token id " + std::to_string(tokens[i]) + " (at position " + std::to_string(i) +
                  ") is out of range for a vocabulary of " + std::to_string(c_.V));
  if (tokens.empty()) return {};
  for (size_t t0 = 0; t0 < tokens.size(); t0 += max_chunk_) {
    const int T = int(std::min(tokens.size() - t0, size_t(max_chunk_)));
    const bool last_chunk = t0 + T == tokens.size();
    if (all_logits) forward(state, tokens.data() + t0, T, Logits::AllRows, all_logits + t0 * c_.V);
    else forward(state, tokens.data() + t0, T, last_chunk ? Logits::LastRow : Logits::None, nullptr);
  }
  if (all_logits) std::copy_n(all_logits + (tokens.size() - 1) * c_.V, c_.V, logits_.data());
  return logits_;
}

void Runner::forward(State& state, const int32_t* tokens, int T, Logits want, float* out) {
  using namespace kernels;
  const Weights& W = model_.weights();
  const int C = c_.C;
  float* x = x_.data();
  for (int t = 0; t < T; ++t) {
    W.emb.row(tokens[t], x + size_t(t) * C);
    layer_norm(x + size_t(t) * C, W.ln0_w, W.ln0_b, C, kLayerNormEps, x + size_t(t) * C);
  }
  if (trace_) trace_->begin(T);
  for (int i = 0; i < c_.n_layer; ++i) {
    time_mix(i, state, T);
    channel_mix(i, state, T);
    if (trace_) trace_->residual(i, x, T);
  }
  const size_t TC = size_t(T) * C;
  float* xn = xn_.data();
  if (want == Logits::AllRows) {
    for (int t = 0; t < T; ++t) layer_norm(x + size_t(t) * C, W.ln_out_w, W.ln_out_b, C, kLayerNormEps, xn + size_t(t) * C);
    matmul(W.head, xn, T, out, *pool_);
  } else if (want == Logits::LastRow) {
    layer_norm(x + TC - C, W.ln_out_w, W.ln_out_b, C, kLayerNormEps, xn);
    matvec(W.head, xn, logits_.data(), *pool_);
  }
}

// The attention block of layer i ("att" in the checkpoint, TMix in the reference) for the
// T rows of x_: token shift, r/k/v and the LoRAs, the wkv recurrence over the layer's
// state, GroupNorm and the bonus, then x += output(y * g). docs/computation.md#time-mix
void Runner::time_mix(int i, State& state, int T) {
  using namespace kernels;
  const LayerWeights& L = model_.weights().layers[i];
  const int C = c_.C, H = c_.H, N = c_.N;
  const size_t TC = size_t(T) * C;
  float *x = x_.data(), *xn = xn_.data(), *y = y_.data(), *tmp = tmp_.data(), *lora = lora_.data();
  float *r = r_.data(), *w = w_.data(), *k = k_.data(), *v = v_.data(), *a = a_.data(), *g = g_.data();
  float *kk = kk_.data(), *v_first = v_first_.data();

  for (int t = 0; t < T; ++t) layer_norm(x + size_t(t) * C, L.ln1_w, L.ln1_b, C, kLayerNormEps, xn + size_t(t) * C);
  float* att_prev = state.att_x_prev(i);
  for (int t = 0; t < T; ++t) {
    const float* cur = xn + size_t(t) * C;
    const float* prev = t == 0 ? att_prev : cur - C;
    const size_t o = size_t(t) * C;
    for (int c = 0; c < C; ++c) {
      const float d = prev[c] - cur[c];
      xr_[o + c] = cur[c] + d * L.x_r[c];
      xw_[o + c] = cur[c] + d * L.x_w[c];
      xk_[o + c] = cur[c] + d * L.x_k[c];
      xv_[o + c] = cur[c] + d * L.x_v[c];
      xa_[o + c] = cur[c] + d * L.x_a[c];
      xg_[o + c] = cur[c] + d * L.x_g[c];
    }
  }
  std::copy_n(xn + TC - C, C, att_prev);

  matmul(L.receptance, xr_.data(), T, r, *pool_);
  matmul(L.key, xk_.data(), T, k, *pool_);
  matmul(L.value, xv_.data(), T, v, *pool_);

  // The LoRAs, side by side on the pool's threads (largest first):
  //   w = exp(-0.606531 * sigmoid(w0 + tanh(xw @ w1) @ w2));  a = sigmoid(a0 + (xa @ a1) @ a2)
  //   g = sigmoid(xg @ g1) @ g2;  v += (v_first - v) * sigmoid(v0 + (xv @ v1) @ v2)
  float* lw = lora;
  float* la = lw + size_t(T) * c_.Dw;
  float* lg = la + size_t(T) * c_.Da;
  float* lv = lg + size_t(T) * c_.Dg;
  const VecmatJob first[] = {{&L.g1, xg_.data(), lg}, {&L.w1, xw_.data(), lw}, {&L.a1, xa_.data(), la},
                             {&L.v1, xv_.data(), lv}};
  vecmat_multi(first, i > 0 ? 4 : 3, T, *pool_);
  for (size_t j = 0; j < size_t(T) * c_.Dw; ++j) lw[j] = math::tanh(lw[j]);
  for (size_t j = 0; j < size_t(T) * c_.Dg; ++j) lg[j] = math::sigmoid(lg[j]);
  const VecmatJob second[] = {{&L.g2, lg, g}, {&L.w2, lw, w}, {&L.a2, la, a}, {&L.v2, lv, tmp}};
  vecmat_multi(second, i > 0 ? 4 : 3, T, *pool_);

  pool_->parallel_for(T, 1, [&](int t0, int t1) {  // tokens are independent here
    for (int t = t0; t < t1; ++t) {
      const size_t o = size_t(t) * C;
      for (int c = 0; c < C; ++c) {
        w[o + c] = math::exp(kDecayScale * math::sigmoid(L.w0[c] + w[o + c]));
        a[o + c] = math::sigmoid(L.a0[c] + a[o + c]);
        kk[o + c] = k[o + c] * L.k_k[c];
        k[o + c] = k[o + c] * (1.0f + (a[o + c] - 1.0f) * L.k_a[c]);
        if (i == 0) v_first[o + c] = v[o + c];
        else v[o + c] += (v_first[o + c] - v[o + c]) * math::sigmoid(L.v0[c] + tmp[o + c]);
      }
      for (int h = 0; h < H; ++h) {  // kk: L2-normalise each head, norm clamped at 1e-12
        float* q = kk + o + size_t(h) * N;
        float ss = 0;
        for (int j = 0; j < N; ++j) ss += q[j] * q[j];
        const float inv = 1.0f / std::max(std::sqrt(ss), 1e-12f);
        for (int j = 0; j < N; ++j) q[j] *= inv;
      }
    }
  });

  if (trace_) trace_->wkv(i, state.wkv(i), r, w, k, v, kk, a, tmp, L.v0, T, y, *pool_);
  else wkv_seq(state.wkv(i), r, w, k, v, kk, a, T, H, N, y, *pool_);
  for (int t = 0; t < T; ++t) {
    const size_t o = size_t(t) * C;
    for (int h = 0; h < H; ++h) {
      const size_t ho = o + size_t(h) * N;
      layer_norm(y + ho, L.ln_x_w + h * N, L.ln_x_b + h * N, N, kGroupNormEps, y + ho);
      float bonus = 0;  // sum_q r k r_k of this head, times v
      for (int j = 0; j < N; ++j) bonus += r[ho + j] * k[ho + j] * L.r_k[h * N + j];
      for (int j = 0; j < N; ++j) y[ho + j] = (y[ho + j] + bonus * v[ho + j]) * g[ho + j];
    }
  }
  matmul(L.output, y, T, tmp, *pool_);
  for (size_t j = 0; j < TC; ++j) x[j] += tmp[j];
}

// The feed-forward block of layer i ("ffn", CMix in the reference) for the T rows of x_:
// token shift, then x += value(relu(key(xk))^2). docs/computation.md#channel-mix
void Runner::channel_mix(int i, State& state, int T) {
  using namespace kernels;
  const LayerWeights& L = model_.weights().layers[i];
  const int C = c_.C, F = c_.F;
  const size_t TC = size_t(T) * C;
  float *x = x_.data(), *xn = xn_.data(), *tmp = tmp_.data(), *hidden = hidden_.data();
  for (int t = 0; t < T; ++t) layer_norm(x + size_t(t) * C, L.ln2_w, L.ln2_b, C, kLayerNormEps, xn + size_t(t) * C);
  float* ffn_prev = state.ffn_x_prev(i);
  for (int t = 0; t < T; ++t) {
    const float* cur = xn + size_t(t) * C;
    const float* prev = t == 0 ? ffn_prev : cur - C;
    for (int c = 0; c < C; ++c) xk_[size_t(t) * C + c] = cur[c] + (prev[c] - cur[c]) * L.ffn_x_k[c];
  }
  std::copy_n(xn + TC - C, C, ffn_prev);
  matmul(L.ffn_key, xk_.data(), T, hidden, *pool_);
  relu_square(hidden, size_t(T) * F);
  matmul(L.ffn_value, hidden, T, tmp, *pool_);
  for (size_t j = 0; j < TC; ++j) x[j] += tmp[j];
}

}  // namespace rwkv
