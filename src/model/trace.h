#pragma once
// A per-token trace of what RWKV-7's state does (docs/inspect.md): a Runner given a Trace
// (Runner::set_trace) appends one record per token it feeds, in prefill as in step.
// Nothing is computed without one (the Runner checks a null pointer).
//
// A record is one flat float array of record_size() = L·H·kTraceFields + L floats:
//   heads    (L, H, kTraceFields)  per layer and head, the fields of TraceField in order
//   residual (L)                   per layer, ‖x‖₂ of the residual stream after the layer
#include <cstddef>
#include <vector>

#include "model/model.h"
#include "kernels/threads.h"

namespace rwkv {

// The per-head fields of a record, in order. Each is of the head's N channels at this
// token, after the token's update of S (docs/inspect.md has the formulas).
enum TraceField {
  kStateNorm,   // ‖S‖_F, the head's N × N state after the update
  kDecayMean,   // mean of the decay w over the head's channels
  kDecayStd,    // their standard deviation (population: divided by N)
  kHalfLife,    // ln 0.5 / ln(mean w): tokens for the mean decay to halve what is stored
  kRate,        // mean of the in-context learning rate a
  kUpdate,      // ‖v kᵀ‖_F / ‖S‖_F = ‖v‖₂‖k‖₂ / ‖S‖_F (0 when S is 0): the write against the state
  kValueMix,    // mean of the value-residual gate sigmoid(v0 + (xv @ v1) @ v2); NaN in layer 0
  kTraceFields
};

class Trace {
 public:
  explicit Trace(const Config& c) : c_(c) {}
  size_t record_size() const { return size_t(c_.n_layer) * c_.H * kTraceFields + c_.n_layer; }
  // Records held: one per token fed since the last clear().
  size_t tokens() const { return data_.size() / record_size(); }
  const float* data() const { return data_.data(); }  // (tokens(), record_size())
  void clear() { data_.clear(); }

  // ---- called by the Runner for each chunk of T tokens
  // Starts the records of the next T tokens (zeros).
  void begin(int T);
  // Layer i's wkv recurrence with the records: runs kernels::wkv_seq one token at a time
  // (the same numbers as all T at once) and records the per-head fields. r, w, k, v, kk,
  // a, y are the Runner's (T, C) rows as it passes them to wkv_seq; v_lora the (T, C)
  // output of the v LoRA before v0 and the sigmoid (unused in layer 0); v0 (C).
  void wkv(int i, float* S, const float* r, const float* w, const float* k, const float* v, const float* kk,
           const float* a, const float* v_lora, const float* v0, int T, float* y, ThreadPool& pool);
  // Layer i's residual stream x (T, C) after its channel mix.
  void residual(int i, const float* x, int T);

 private:
  float* record(int t) { return data_.data() + (first_ + size_t(t)) * record_size(); }
  float* head(int t, int i, int h) { return record(t) + (size_t(i) * c_.H + h) * kTraceFields; }

  Config c_;
  std::vector<float> data_;  // (tokens, record_size)
  size_t first_ = 0;         // the record of the chunk's first token
};

}  // namespace rwkv
