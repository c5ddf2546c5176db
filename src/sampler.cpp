#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "error.h"

namespace rwkv {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(x) for x <= 0, from integer arithmetic only (so no libm, FMA or rounding-mode
// differences between builds); relative error below 1e-8. NaN and x <= -88 give 0
// (exp(-88) is below anything a 53-bit draw can pick).
double exp_nonpositive(double x) {
  if (!(x > -88.0)) return 0.0;
  if (x >= 0.0) return 1.0;
  constexpr uint64_t kLn2 = 762123384786;              // ln 2 in units of 2^-40
  const uint64_t a = uint64_t(-x * 1099511627776.0);   // -x in units of 2^-40 (< 2^47)
  const uint64_t n = a / kLn2;                          // -x = n ln2 + r, 0 <= r < ln2
  const uint64_t s = (kLn2 - (a - n * kLn2)) >> 9;     // s = ln2 - r in units of 2^-31
  // exp(-x) = 2^-(n+1) * exp(s); exp(s) by its Taylor series in units of 2^-31 (s <= ln2,
  // so the terms drop below one unit after about 13 of them and the sum stays < 2^32).
  uint64_t term = uint64_t(1) << 31, sum = term;
  for (uint64_t k = 1; term != 0; ++k) {
    term = term * s / (k << 31);
    sum += term;
  }
  return std::ldexp(double(sum), -int(31 + n + 1));
}

std::string show(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

[[noreturn]] void bad_option(const std::string& what) { throw Error("sampler option " + what); }

}  // namespace

void SamplerOptions::validate(size_t vocab) const {
  if (vocab == 0) throw Error("sampler: the vocabulary is empty");
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    bad_option("temperature must be a finite number >= 0 (0 = greedy), got " + show(temperature));
  if (!(top_p >= 0.0f && top_p <= 1.0f)) bad_option("top_p must be in [0, 1] (0 = greedy), got " + show(top_p));
  if (top_k < 0) bad_option("top_k must be >= 0 (0 = off), got " + std::to_string(top_k));
  if (!(min_p >= 0.0f && min_p <= 1.0f)) bad_option("min_p must be in [0, 1] (0 = off), got " + show(min_p));
  if (!std::isfinite(presence_penalty))
    bad_option("presence_penalty must be a finite number, got " + show(presence_penalty));
  if (!std::isfinite(frequency_penalty))
    bad_option("frequency_penalty must be a finite number, got " + show(frequency_penalty));
  if (!(penalty_decay >= 0.0f && penalty_decay <= 1.0f))
    bad_option("penalty_decay must be in [0, 1], got " + show(penalty_decay));
  const std::string ids = " must be a token id in [0, " + std::to_string(vocab) + "), got ";
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || size_t(id) >= vocab) bad_option("logit_bias token" + ids + std::to_string(id));
    if (!std::isfinite(bias))
      bad_option("logit_bias for token " + std::to_string(id) + " must be a finite number (ban it instead), got " + show(bias));
  }
  for (const int32_t id : banned)
    if (id < 0 || size_t(id) >= vocab) bad_option("banned token" + ids + std::to_string(id));
}

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) {  // splitmix64
    seed += 0x9e3779b97f4a7c15ull;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    s = z ^ (z >> 31);
  }
}

uint64_t Rng::next() {
  const auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

Sampler::Sampler(SamplerOptions options, size_t vocab)
    : options_(std::move(options)), vocab_(vocab), rng_(options_.seed), count_(vocab, 0.0f), is_seen_(vocab, 0) {
  options_.validate(vocab);
}

void Sampler::reset() {
  rng_ = Rng(options_.seed);
  for (const int32_t t : seen_) {
    count_[size_t(t)] = 0.0f;
    is_seen_[size_t(t)] = 0;
  }
  seen_.clear();
}

void Sampler::accept(int32_t token) {
  if (token < 0 || size_t(token) >= vocab_)
    throw Error("sampler: accepted token " + std::to_string(token) + " is outside [0, " + std::to_string(vocab_) + ")");
  // The product of two floats is exact in double: rounding it once to float gives the
  // float product whatever the compiler contracts.
  for (const int32_t t : seen_) count_[size_t(t)] = float(double(count_[size_t(t)]) * double(options_.penalty_decay));
  count_[size_t(token)] += 1.0f;
  if (!is_seen_[size_t(token)]) {
    is_seen_[size_t(token)] = 1;
    seen_.push_back(token);
  }
}

void Sampler::adjust(std::span<float> logits) const {
  if (logits.size() != vocab_)
    throw Error("sampler: got " + std::to_string(logits.size()) + " logits for a vocabulary of " + std::to_string(vocab_));
  for (const int32_t t : seen_) {
    const float c = count_[size_t(t)];
    if (c <= 0.0f) continue;
    const double penalty = double(options_.presence_penalty) + double(options_.frequency_penalty) * double(c);
    logits[size_t(t)] = float(double(logits[size_t(t)]) - penalty);
  }
  for (const auto& [id, bias] : options_.logit_bias) logits[size_t(id)] += bias;
  for (const int32_t id : options_.banned) logits[size_t(id)] = kNegInf;
}

bool Sampler::greedy() const { return options_.temperature == 0.0f || options_.top_p == 0.0f; }

int32_t Sampler::argmax(std::span<const float> logits) const {
  int32_t best = -1;
  float best_logit = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {  // NaN never wins
      best_logit = logits[i];
      best = int32_t(i);
    }
  }
  if (best < 0) throw Error("sampler: no token can be sampled (every logit is -inf or NaN, or every token is banned)");
  return best;
}

double Sampler::distribution(std::span<const float> logits, std::vector<Weighted>& kept) const {
  const float top = logits[size_t(argmax(logits))];
  // Weight of a logit at a temperature: exp((logit - top) / t), 1 for the top itself.
  const auto weight = [&](float logit, double t) {
    return logit == top ? 1.0 : exp_nonpositive((double(logit) - double(top)) / t);
  };
  // Greater weight first, then lower id: a total order, so any sort gives one result.
  const auto order = [](const Weighted& a, const Weighted& b) { return a.weight != b.weight ? a.weight > b.weight : a.id < b.id; };

  kept.clear();
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double w = weight(logits[i], 1.0);
    if (w > 0.0) {
      kept.push_back({w, int32_t(i)});
      total += w;
    }
  }

  bool sorted = false;  // kept in `order` rather than id order
  if (options_.top_p < 1.0f) {
    // Sort a growing prefix until the running sum reaches top_p of the total.
    const double target = double(options_.top_p) * total;
    const size_t n = kept.size();
    double sum = 0.0, cutoff = -1.0;
    size_t done = 0;
    for (size_t m = std::min<size_t>(64, n); cutoff < 0.0; m = std::min(n, m * 8)) {
      std::partial_sort(kept.begin() + std::ptrdiff_t(done), kept.begin() + std::ptrdiff_t(m), kept.end(), order);
      for (; done < m && cutoff < 0.0; ++done) {
        sum += kept[done].weight;
        if (sum >= target) cutoff = kept[done].weight;
      }
      if (m == n) break;
    }
    if (cutoff >= 0.0) {
      const auto end = std::partition(kept.begin(), kept.end(), [&](const Weighted& w) { return w.weight >= cutoff; });
      kept.erase(end, kept.end());
      std::sort(kept.begin(), kept.end(), order);
    }
    sorted = true;  // either re-sorted, or the loop sorted everything
  }
  if (options_.top_k > 0 && kept.size() > size_t(options_.top_k)) {
    const auto k = std::ptrdiff_t(options_.top_k);
    if (!sorted) std::partial_sort(kept.begin(), kept.begin() + k, kept.end(), order);
    kept.resize(size_t(k));
  }
  if (options_.temperature != 1.0f)
    for (Weighted& w : kept) w.weight = weight(logits[size_t(w.id)], double(options_.temperature));
  if (options_.min_p > 0.0f) {
    double largest = 0.0;
    for (const Weighted& w : kept) largest = std::max(largest, w.weight);
    const double floor = double(options_.min_p) * largest;
    std::erase_if(kept, [&](const Weighted& w) { return w.weight < floor; });
  }
  total = 0.0;
  for (const Weighted& w : kept) total += w.weight;
  return total;
}

int32_t Sampler::sample(std::span<float> logits) {
  adjust(logits);
  if (greedy()) return argmax(logits);
  const double total = distribution(logits, kept_);
  const double target = rng_.uniform() * total;
  double sum = 0.0;
  for (const Weighted& w : kept_) {
    sum += w.weight;
    if (target < sum) return w.id;
  }
  return kept_.back().id;  // rounding left target at the very end
}

std::vector<float> Sampler::probabilities(std::span<const float> logits) const {
  std::vector<float> adjusted(logits.begin(), logits.end());
  adjust(adjusted);
  std::vector<float> probs(vocab_, 0.0f);
  if (greedy()) {
    probs[size_t(argmax(adjusted))] = 1.0f;
    return probs;
  }
  std::vector<Weighted> kept;
  const double total = distribution(adjusted, kept);
  for (const Weighted& w : kept) probs[size_t(w.id)] = float(w.weight / total);
  return probs;
}

}  // namespace rwkv
