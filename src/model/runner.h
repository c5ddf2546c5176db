#pragma once
// Running an RWKV-7 model (docs/computation.md): the State (one flat float buffer, laid
// out as docs/computation.md#the-state says) and the Runner (scratch buffers sized once
// from the config; step and parallel prefill).
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/model.h"
#include "model/trace.h"
#include "kernels/threads.h"

namespace rwkv {

// The recurrent state of one sequence. Layout, per layer in order:
//   att_x_prev (C), wkv S (H, N, N) as [head][value p][key q], ffn_x_prev (C).
// All zeros is the initial state. The buffer can be saved, restored and compared as is.
class State {
 public:
  explicit State(const Config& c) : c_(c), data_(c.state_size(), 0.0f) {}
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  const Config& config() const { return c_; }
  void reset() { std::fill(data_.begin(), data_.end(), 0.0f); }
  float* att_x_prev(int layer) { return data_.data() + layer * c_.layer_state_size(); }
  float* wkv(int layer) { return att_x_prev(layer) + c_.C; }
  float* ffn_x_prev(int layer) { return wkv(layer) + size_t(c_.H) * c_.N * c_.N; }

 private:
  Config c_;
  std::vector<float> data_;  // (n_layer, layer_state_size)
};

// Evaluates a model on states. Holds the scratch memory for chunks of up to
// `max_chunk` tokens; not thread-safe (use one Runner per thread). The model must
// outlive the runner.
class Runner {
 public:
  explicit Runner(const Model& model, int max_chunk = 64);

  // RNN mode: feeds one token, returns its logits (V), valid until the next call.
  std::span<const float> step(State& state, int32_t token);

  // GPT mode: feeds tokens in chunks of max_chunk, each chunk's projections computed as
  // matrix products. Returns the last token's logits (V), valid until the next call
  // (empty if tokens is empty). When all_logits is not null it receives the logits
  // after every token, tokens.size() rows of V.
  std::span<const float> prefill(State& state, std::span<const int32_t> tokens, float* all_logits = nullptr);

  const Model& model() const { return model_; }

  // Threads for the large matrix products: 1 (the caller only) by default, clamped to
  // what the build supports. The results are the same for any count.
  void set_threads(int n);
  int threads() const { return pool_->size(); }

  // Records every token fed from now on into `trace` (one record each, docs/inspect.md),
  // until set_trace(nullptr). The logits and states are the same with or without it.
  void set_trace(Trace* trace) { trace_ = trace; }

 private:
  enum class Logits { None, LastRow, AllRows };
  // Runs T <= max_chunk tokens; writes the logits of every row into out (T, V)
  // (AllRows), of the last row into logits_ (LastRow), or none.
  void forward(State& state, const int32_t* tokens, int T, Logits want, float* out);
  // Layer i's two blocks on the T rows of x_ (docs/computation.md): the attention block
  // ("att", time mixing) and the feed-forward block ("ffn", channel mixing). Each adds its
  // output to x_ and updates the layer's part of `state`.
  void time_mix(int layer, State& state, int T);
  void channel_mix(int layer, State& state, int T);

  const Model& model_;
  const Config c_;
  const int max_chunk_;
  // Scratch, each (max_chunk, width):
  std::vector<float> x_, xn_;                    // (T, C) residual stream, its norm
  std::vector<float> xr_, xw_, xk_, xv_, xa_, xg_;  // (T, C) token-shifted inputs
  std::vector<float> r_, w_, k_, v_, a_, g_, kk_;   // (T, C)
  std::vector<float> v_first_, y_, tmp_;            // (T, C)
  std::vector<float> lora_;                         // (T, Dw + Da + Dg + Dv): the LoRA middles
  std::vector<float> hidden_;                       // (T, F)
  std::vector<float> logits_;                       // (V)
  std::unique_ptr<ThreadPool> pool_;
  Trace* trace_ = nullptr;  // not owned; null: no trace
};

}  // namespace rwkv
