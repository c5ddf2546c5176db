#include "text/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "base/error.h"

namespace rwkv {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(x) for x <= 0 as m * 2^-e, from integer arithmetic only (so no libm, FMA or
// rounding-mode differences between builds): relative error below 1e-8.
struct FixedExp {
  uint64_t m;  // 0 (x <= -88 or NaN: below anything a 53-bit draw can pick) or in (2^31, 2^32]
  int e;       // 32 ... 159

  double value() const { return std::ldexp(double(m), -e); }  // exact: a power-of-two scaling
  // In units of 2^-40: 2^40 for exp(0), 0 below 2^-40.
  uint64_t units() const { return e <= 40 ? m << (40 - e) : e - 40 < 64 ? m >> (e - 40) : 0; }
};

// Taylor coefficients 2^31 / k!, k = 0..12.
constexpr auto kExpTaylor = [] {
  std::array<uint64_t, 13> c{};
  uint64_t factorial = 1;
  for (uint64_t k = 0; k < c.size(); ++k) {
    if (k > 0) factorial *= k;
    c[k] = (uint64_t(1) << 31) / factorial;
  }
  return c;
}();

FixedExp fixed_exp(double x) {
  if (!(x > -88.0)) return {0, 32};
  if (x >= 0.0) return {uint64_t(1) << 32, 32};
  constexpr uint64_t kLn2 = 762123384786;             // ln 2 in units of 2^-40
  const uint64_t a = uint64_t(-x * 1099511627776.0);  // -x in units of 2^-40 (< 2^47)
  const uint64_t n = a / kLn2;                         // -x = n ln2 + r, 0 <= r < ln2
  const uint64_t s = (kLn2 - (a - n * kLn2)) >> 9;    // s = ln2 - r in units of 2^-31
  // exp(-x) = 2^-(n+1) exp(s), exp(s) by Horner's rule in units of 2^-31 (s <= ln2).
  uint64_t p = kExpTaylor.back();
  for (size_t k = kExpTaylor.size() - 1; k-- > 0;) p = kExpTaylor[k] + (p * s >> 31);
  return {p, int(32 + n)};
}

// The largest weight v such that the weights >= v sum to at least `target` (exact
// integers, so the answer is unique), or 0 when all of them together fall short.
// Quickselect over [lo, hi) (elements with a `units` weight), which it reorders.
template <class It>
uint64_t top_p_cutoff(It lo, It hi, uint64_t target) {
  uint64_t above = 0;  // sum of the weights known to be above [lo, hi)
  while (lo != hi) {
    const uint64_t a = lo->units, b = lo[(hi - lo) / 2].units, c = hi[-1].units;
    const uint64_t v = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three
    const auto gt = std::partition(lo, hi, [&](const auto& r) { return r.units > v; });
    const auto eq = std::partition(gt, hi, [&](const auto& r) { return r.units == v; });
    uint64_t sum_gt = 0;
    for (auto it = lo; it != gt; ++it) sum_gt += it->units;
    const uint64_t sum_eq = v * uint64_t(eq - gt);
    if (above + sum_gt >= target) {
      hi = gt;
    } else if (above + sum_gt + sum_eq >= target) {
      return v;
    } else {
      above += sum_gt + sum_eq;
      lo = eq;
    }
  }
  return 0;
}

std::string show(float v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

[[noreturn]] void bad_option(const std::string& what) { throw Error("sampler option " + what); }

SamplerOptions validated(SamplerOptions options, size_t vocab) {
  options.validate(vocab);
  return options;
}

}  // namespace

void SamplerOptions::validate(size_t vocab) const {
  if (vocab == 0 || vocab > (size_t(1) << 23))  // 2^23 weights of at most 2^40 units sum below 2^64
    throw Error("sampler: vocabulary size " + std::to_string(vocab) + " is outside [1, 8388608]");
  // The numbers by the schema's ranges (the seed takes any value once it is a uint64_t).
#define RWKV_CHECK(field, name, openai, min, max, range) \
  if constexpr (!std::is_same_v<decltype(field), uint64_t>) check_option(name, openai, double(field), min, max, range);
  RWKV_SAMPLER_NUMERIC(RWKV_CHECK)
#undef RWKV_CHECK
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
    : options_(validated(std::move(options), vocab)),
      vocab_(vocab),
      rng_(options_.seed),
      count_(vocab, 0.0f),
      is_seen_(vocab, 0) {}

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

double Sampler::distribution(std::span<const float> logits, Scratch& scratch) const {
  const float top = logits[size_t(argmax(logits))];
  // exp((logit - top) / t); exactly 1 for the top itself (also when it is +inf).
  const auto weight = [&](float logit, double t) {
    return logit == top ? fixed_exp(0.0) : fixed_exp((double(logit) - double(top)) / t);
  };

  std::vector<Ranked>& ranked = scratch.ranked;
  ranked.clear();
  uint64_t total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const uint64_t u = weight(logits[i], 1.0).units();
    if (u == 0) continue;
    ranked.push_back({u, int32_t(i)});
    total += u;
  }
  if (options_.top_p < 1.0f) {
    scratch.work = ranked;
    const auto target = uint64_t(std::ceil(double(options_.top_p) * double(total)));
    const uint64_t cutoff = top_p_cutoff(scratch.work.begin(), scratch.work.end(), target);
    std::erase_if(ranked, [&](const Ranked& r) { return r.units < cutoff; });
  }
  if (options_.top_k > 0 && ranked.size() > size_t(options_.top_k)) {
    // Greater weight first, then lower id: a total order, so the k chosen are unique.
    const auto k = ranked.begin() + options_.top_k;
    std::nth_element(ranked.begin(), k - 1, ranked.end(), [](const Ranked& a, const Ranked& b) {
      return a.units != b.units ? a.units > b.units : a.id < b.id;
    });
    ranked.erase(k, ranked.end());
    std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) { return a.id < b.id; });
  }

  std::vector<Weighted>& kept = scratch.kept;
  kept.clear();
  const double t = double(options_.temperature);
  for (const Ranked& r : ranked) kept.push_back({weight(logits[size_t(r.id)], t).value(), r.id});
  if (options_.min_p > 0.0f) {
    double largest = 0.0;
    for (const Weighted& w : kept) largest = std::max(largest, w.weight);
    const double floor = double(options_.min_p) * largest;
    std::erase_if(kept, [&](const Weighted& w) { return w.weight < floor; });
  }
  double sum = 0.0;
  for (const Weighted& w : kept) sum += w.weight;
  return sum;
}

int32_t Sampler::sample(std::span<float> logits) {
  adjust(logits);
  if (greedy()) return argmax(logits);
  const double total = distribution(logits, scratch_);
  const double target = rng_.uniform() * total;
  double sum = 0.0;
  for (const Weighted& w : scratch_.kept) {
    sum += w.weight;
    if (target < sum) return w.id;
  }
  return scratch_.kept.back().id;  // rounding left target at the very end
}

std::vector<float> Sampler::probabilities(std::span<const float> logits) const {
  std::vector<float> adjusted(logits.begin(), logits.end());
  adjust(adjusted);
  std::vector<float> probs(vocab_, 0.0f);
  if (greedy()) {
    probs[size_t(argmax(adjusted))] = 1.0f;
    return probs;
  }
  Scratch scratch;
  const double total = distribution(adjusted, scratch);
  for (const Weighted& w : scratch.kept) probs[size_t(w.id)] = float(w.weight / total);
  return probs;
}

}  // namespace rwkv
