#pragma once
// Token sampling as RWKV users know it (docs/sampling.md; ChatRWKV's `sample_logits` and
// `generate`), with a seeded generator so that a seed gives the same tokens natively and
// in WebAssembly.
//
// What sample() does with the logits of one step, in this order:
//  1. penalties: logit[t] -= presence_penalty * (count[t] > 0) + frequency_penalty * count[t]
//  2. logit_bias: logit[t] += bias, for each (t, bias) in order
//  3. banned: logit[t] = -inf. NaN logits count as -inf from here on.
//  4. greedy when temperature == 0 or top_p == 0: the largest logit, lowest id on ties;
//     no random number is drawn. Otherwise:
//  5. probs = softmax(logits) (temperature 1).
//  6. top-p: in order of prob (descending), cutoff = the prob of the first token at which
//     the running sum reaches top_p; keep every token whose prob >= cutoff (ties with
//     the cutoff included). All are kept when the sum never reaches it (top_p = 1).
//  7. top-k (when > 0): of those, keep the top_k most probable, lower ids first on ties.
//  8. temperature: probs = probs ** (1 / temperature), computed as
//     exp((logit - max logit) / temperature), which is the same up to normalisation.
//  9. min-p (when > 0): drop tokens whose tempered prob < min_p * the largest one.
// 10. draw: u uniform in [0, 1) from the generator; the first kept token in id order at
//     which the running sum of weights exceeds u * total.
// sample() leaves the penalty counts alone: call accept() with the token that is fed to
// the model, which multiplies every count by penalty_decay and then adds 1 to that
// token's count (ChatRWKV applies the penalties, samples, then decays and counts).
//
// Determinism: exponentials are computed in fixed point by our own code; steps 6-7 work
// on weights in exact integer units (a token below 2^-40 of the top one is never drawn),
// so their result does not depend on summation order; later sums run in id order in
// double. Nothing depends on libm approximations (only the exact ldexp and ceil), FMA
// contraction or the standard library's sorts.
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "text/options.h"

namespace rwkv {

// Defaults and ranges: the options schema (text/options.h, js/options.mjs).
struct SamplerOptions {
  float temperature = float(option_defaults::sampler_temperature);  // 0 = greedy
  float top_p = float(option_defaults::sampler_top_p);              // 0 = greedy
  int top_k = int(option_defaults::sampler_top_k);                  // 0 = off
  float min_p = float(option_defaults::sampler_min_p);              // 0 = off
  float presence_penalty = float(option_defaults::sampler_presence_penalty);
  float frequency_penalty = float(option_defaults::sampler_frequency_penalty);
  float penalty_decay = float(option_defaults::sampler_penalty_decay);
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token, added to its logit)
  std::vector<int32_t> banned;                        // tokens never sampled
  uint64_t seed = 0;

  // Throws rwkv::Error naming the first option out of range and its allowed range.
  void validate(size_t vocab) const;
};

// xoshiro256** seeded through splitmix64: integer operations only, the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // in [0, 1), 53 random bits

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // Throws rwkv::Error when the options are invalid for this vocabulary size.
  Sampler(SamplerOptions options, size_t vocab);

  // One token from logits (size == vocab; the penalties, bias and bans of steps 1-3 are
  // written into them). Throws rwkv::Error on a size mismatch or when every logit is
  // -inf or NaN after step 3.
  int32_t sample(std::span<float> logits);
  // Records the token chosen at this step for the penalties (see above).
  void accept(int32_t token);
  // Back to the state after construction: no counts, generator re-seeded.
  void reset();

  // The distribution the draw in sample() would use for these logits: vocab entries,
  // zero for dropped tokens, summing to 1 (one-hot when greedy). Same errors as sample().
  std::vector<float> probabilities(std::span<const float> logits) const;
  const SamplerOptions& options() const { return options_; }

 private:
  struct Ranked {
    uint64_t units;  // weight at temperature 1 in units of 2^-40 of the top token's
    int32_t id;
  };
  struct Weighted {
    double weight;  // final unnormalised probability
    int32_t id;
  };
  struct Scratch {
    std::vector<Ranked> ranked, work;  // candidates in id order; a copy to select in
    std::vector<Weighted> kept;        // the distribution, in id order
  };
  void adjust(std::span<float> logits) const;  // steps 1-3
  bool greedy() const;
  int32_t argmax(std::span<const float> logits) const;
  // Steps 5-9 into scratch.kept; returns the total weight.
  double distribution(std::span<const float> logits, Scratch& scratch) const;

  SamplerOptions options_;
  size_t vocab_;
  Rng rng_;
  std::vector<float> count_;     // vocab entries: decayed occurrence counts
  std::vector<int32_t> seen_;    // tokens whose count has ever been set, in order
  std::vector<uint8_t> is_seen_; // vocab entries: 1 when in seen_
  Scratch scratch_;              // reused by sample()
};

}  // namespace rwkv
