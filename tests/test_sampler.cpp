// Sampler: every option against distributions computed by hand, penalties, validation,
// and the draw itself (frequencies, reproducibility).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "text/sampler.h"

using Catch::Matchers::Contains;
using rwkv::Sampler;
using rwkv::SamplerOptions;

namespace {

// Options with every filter and penalty off: plain softmax sampling.
SamplerOptions plain() {
  SamplerOptions o;
  o.top_p = 1.0f;
  o.presence_penalty = 0.0f;
  o.frequency_penalty = 0.0f;
  return o;
}

std::vector<float> log_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (const double p : probs) l.push_back(float(std::log(p)));
  return l;
}

// `weights` normalised; zeros stay zero.
std::vector<double> normalised(const std::vector<double>& weights) {
  double sum = 0;
  for (const double w : weights) sum += w;
  std::vector<double> out;
  for (const double w : weights) out.push_back(w / sum);
  return out;
}

void check_probs(const std::vector<float>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("token " << i);
    CHECK(got[i] == Approx(expected[i]).margin(1e-6));
  }
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};

}  // namespace

TEST_CASE("Rng is xoshiro256** seeded by splitmix64", "[sampler]") {
  rwkv::Rng a(0);
  CHECK(a.next() == 0x99ec5f36cb75f2b4ull);
  CHECK(a.next() == 0xbf6e1f784956452aull);
  CHECK(a.next() == 0x1a5f849d4933e6e0ull);
  CHECK(a.next() == 0x6aa594f1262d2d2cull);
  rwkv::Rng b(42);
  CHECK(b.next() == 0x15780b2e0c2ec716ull);
  CHECK(b.next() == 0x6104d9866d113a7eull);
  rwkv::Rng c(3);
  for (int i = 0; i < 10000; ++i) {
    const double u = c.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("Softmax without filters", "[sampler]") {
  const Sampler s(plain(), 5);
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f, -30.0f};
  std::vector<double> w;
  for (const float l : logits) w.push_back(std::exp(double(l)));
  check_probs(s.probabilities(logits), normalised(w));
  // Wide range: relative accuracy of the exponentials.
  std::vector<float> wide;
  std::vector<double> ew;
  for (int i = 0; i < 40; ++i) {
    wide.push_back(-0.7f * float(i) + 0.013f * float(i * i));
    ew.push_back(std::exp(double(wide.back())));
  }
  const auto p = Sampler(plain(), 40).probabilities(wide);
  const auto expected = normalised(ew);
  for (size_t i = 0; i < p.size(); ++i) CHECK(p[i] == Approx(expected[i]).epsilon(1e-6));
}

TEST_CASE("top_p keeps the smallest most probable set reaching top_p, cutoff ties included", "[sampler]") {
  SamplerOptions o = plain();
  o.top_p = 0.7f;  // 0.5 + 0.3 reaches it
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), {0.625, 0.375, 0, 0});
  o.top_p = 0.45f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), {1, 0, 0, 0});
  o.top_p = 0.9f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), normalised({0.5, 0.3, 0.15, 0}));
  o.top_p = 1.0f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), kProbs);
  // 0.4 + 0.2 reaches 0.5 at a token tied with two others: all three stay.
  o.top_p = 0.5f;
  const std::vector<float> tied = {std::log(0.2f), std::log(0.4f), std::log(0.2f), std::log(0.2f)};
  check_probs(Sampler(o, 4).probabilities(tied), normalised({std::exp(double(tied[0])), std::exp(double(tied[1])),
                                                             std::exp(double(tied[2])), std::exp(double(tied[3]))}));
  // Ids in descending order of probability, so the sort matters; many tokens.
  std::vector<float> many(1000);
  std::vector<double> w(1000);
  for (size_t i = 0; i < many.size(); ++i) {
    many[i] = -0.01f * float(999 - i);
    w[i] = std::exp(double(many[i]));
  }
  o.top_p = 0.3f;
  const auto all = normalised(w);
  double sum = 0;
  size_t first_kept = 1000;
  while (sum < 0.3) sum += all[--first_kept];
  std::vector<double> expected(1000, 0.0);
  for (size_t i = first_kept; i < 1000; ++i) expected[i] = w[i];
  check_probs(Sampler(o, 1000).probabilities(many), normalised(expected));
}

TEST_CASE("top_k keeps the k most probable, lower ids first on ties", "[sampler]") {
  SamplerOptions o = plain();
  o.top_k = 2;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), {0.625, 0.375, 0, 0});
  o.top_k = 10;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), kProbs);
  const std::vector<float> tied = {1.0f, 2.0f, 2.0f, 2.0f};
  o.top_k = 2;
  check_probs(Sampler(o, 4).probabilities(tied), {0, 0.5, 0.5, 0});
  o.top_k = 1;
  check_probs(Sampler(o, 4).probabilities(tied), {0, 1, 0, 0});
  // With top_p: the intersection.
  o.top_k = 3;
  o.top_p = 0.7f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), {0.625, 0.375, 0, 0});
}

TEST_CASE("temperature raises the probabilities to 1/T after top-p chose the set", "[sampler]") {
  SamplerOptions o = plain();
  o.temperature = 0.5f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), normalised({0.25, 0.09, 0.0225, 0.0025}));
  // top-p on the untempered probabilities keeps 3 tokens; after T = 2 the tempered ones
  // would have needed all 4 to reach 0.9.
  o.temperature = 2.0f;
  o.top_p = 0.9f;
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), normalised({std::sqrt(0.5), std::sqrt(0.3), std::sqrt(0.15), 0}));
}

TEST_CASE("min_p drops tokens below min_p times the largest tempered probability", "[sampler]") {
  SamplerOptions o = plain();
  o.min_p = 0.2f;  // floor 0.1
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), normalised({0.5, 0.3, 0.15, 0}));
  o.temperature = 0.5f;  // tempered weights 0.25, 0.09, 0.0225, 0.0025: floor 0.05
  check_probs(Sampler(o, 4).probabilities(log_of(kProbs)), normalised({0.25, 0.09, 0, 0}));
}

TEST_CASE("Greedy: temperature 0 or top_p 0 take the largest logit, lowest id on ties", "[sampler]") {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  SamplerOptions o = plain();
  o.temperature = 0.0f;
  Sampler a(o, 5);
  check_probs(a.probabilities(logits), {0, 1, 0, 0, 0});
  for (int i = 0; i < 5; ++i) {
    std::vector<float> l = logits;
    CHECK(a.sample(l) == 1);
  }
  o = plain();
  o.top_p = 0.0f;
  Sampler b(o, 5);
  std::vector<float> l = logits;
  CHECK(b.sample(l) == 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> with_nan = {nan, 1.0f, nan};
  CHECK(Sampler(o, 3).sample(with_nan) == 1);
}

TEST_CASE("Penalties follow the counts, decayed at each accept", "[sampler]") {
  SamplerOptions o = plain();
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  o.penalty_decay = 0.5f;
  Sampler s(o, 4);
  const std::vector<float> zeros(4, 0.0f);
  check_probs(s.probabilities(zeros), {0.25, 0.25, 0.25, 0.25});
  s.accept(1);  // counts: 1 -> 1
  s.accept(1);  // 1 -> 1 * 0.5 + 1 = 1.5
  s.accept(2);  // 1 -> 0.75, 2 -> 1
  const std::vector<double> adjusted = {0.0, -(0.5 + 0.25 * 0.75), -(0.5 + 0.25 * 1.0), 0.0};
  std::vector<double> w;
  for (const double l : adjusted) w.push_back(std::exp(l));
  check_probs(s.probabilities(zeros), normalised(w));
  // sample() writes the adjusted logits back.
  std::vector<float> l = zeros;
  s.sample(l);
  for (size_t i = 0; i < 4; ++i) CHECK(l[i] == Approx(adjusted[i]).margin(1e-7));
  // reset() forgets the counts.
  s.reset();
  check_probs(s.probabilities(zeros), {0.25, 0.25, 0.25, 0.25});

  // Decay 0: only the last token keeps a count, so only it is penalised.
  o.penalty_decay = 0.0f;
  Sampler z(o, 4);
  z.accept(1);
  z.accept(2);
  std::vector<float> lz = zeros;
  z.sample(lz);
  CHECK(lz == std::vector<float>{0.0f, 0.0f, -0.75f, 0.0f});
  REQUIRE_THROWS_WITH(z.accept(4), Contains("4"));
  REQUIRE_THROWS_AS(z.accept(-1), rwkv::Error);
}

TEST_CASE("Defaults are the chat defaults", "[sampler]") {
  const SamplerOptions o;
  CHECK(o.temperature == 1.0f);
  CHECK(o.top_p == 0.3f);
  CHECK(o.top_k == 0);
  CHECK(o.presence_penalty == 0.5f);
  CHECK(o.frequency_penalty == 0.5f);
  CHECK(o.penalty_decay == 0.996f);
  // One accept with the defaults: presence 0.5 + frequency 0.5 * 1.
  SamplerOptions p = o;
  p.top_p = 1.0f;
  Sampler s(p, 3);
  s.accept(0);
  std::vector<float> l(3, 0.0f);
  s.sample(l);
  CHECK(l[0] == -1.0f);
  s.accept(0);  // 1 * 0.996 + 1
  l.assign(3, 0.0f);
  s.sample(l);
  CHECK(l[0] == Approx(-(0.5 + 0.5 * 1.996)).margin(1e-6));
}

TEST_CASE("logit_bias and banned tokens", "[sampler]") {
  SamplerOptions o = plain();
  o.logit_bias = {{0, float(std::log(3.0))}, {3, 5.0f}};
  o.banned = {3};
  check_probs(Sampler(o, 4).probabilities(std::vector<float>(4, 0.0f)), {0.6, 0.2, 0.2, 0});
  o.banned = {0, 1, 2, 3};
  Sampler all_banned(o, 4);
  std::vector<float> l(4, 0.0f);
  REQUIRE_THROWS_WITH(all_banned.sample(l), Contains("banned"));
  Sampler s(plain(), 4);
  std::vector<float> short_logits(3, 0.0f);
  REQUIRE_THROWS_WITH(s.sample(short_logits), Contains("3 logits") && Contains("4"));
}

// The names and ranges come from the options schema (js/options.mjs, text/options.h).
TEST_CASE("Option validation names the option and its range", "[sampler]") {
  struct Case {
    void (*set)(SamplerOptions&);
    const char* message;
  };
  const Case cases[] = {
      {[](SamplerOptions& o) { o.temperature = -0.1f; }, "temperature must be 0 or more, got -0.1"},
      {[](SamplerOptions& o) { o.temperature = std::numeric_limits<float>::quiet_NaN(); }, "temperature"},
      {[](SamplerOptions& o) { o.top_p = 1.5f; }, "topP must be between 0 and 1 (top_p), got 1.5"},
      {[](SamplerOptions& o) { o.top_p = -0.5f; }, "topP must be between 0 and 1 (top_p), got -0.5"},
      {[](SamplerOptions& o) { o.top_k = -1; }, "topK must be between 0 and 2147483647 (top_k), got -1"},
      {[](SamplerOptions& o) { o.min_p = 2.0f; }, "minP must be between 0 and 1 (min_p), got 2"},
      {[](SamplerOptions& o) { o.presence_penalty = std::numeric_limits<float>::quiet_NaN(); }, "presence_penalty"},
      {[](SamplerOptions& o) { o.frequency_penalty = std::numeric_limits<float>::infinity(); }, "frequency_penalty"},
      {[](SamplerOptions& o) { o.penalty_decay = 1.1f; }, "penaltyDecay must be between 0 and 1 (penalty_decay), got 1.1"},
      {[](SamplerOptions& o) { o.logit_bias = {{10, 1.0f}}; }, "logit_bias token must be a token id in [0, 10), got 10"},
      {[](SamplerOptions& o) { o.logit_bias = {{1, std::numeric_limits<float>::quiet_NaN()}}; }, "logit_bias for token 1"},
      {[](SamplerOptions& o) { o.banned = {-1}; }, "banned token must be a token id in [0, 10), got -1"},
  };
  for (const Case& c : cases) {
    SamplerOptions o;
    c.set(o);
    INFO(c.message);
    REQUIRE_THROWS_AS(o.validate(10), rwkv::Error);
    REQUIRE_THROWS_WITH(o.validate(10), Contains(c.message));
    REQUIRE_THROWS_WITH(Sampler(o, 10), Contains(c.message));
  }
  SamplerOptions ok;
  ok.temperature = 0.0f;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.penalty_decay = 0.0f;
  ok.presence_penalty = -1.0f;
  CHECK_NOTHROW(ok.validate(10));
}

TEST_CASE("Draws follow probabilities()", "[sampler]") {
  SamplerOptions o = plain();
  o.temperature = 0.8f;
  o.top_p = 0.9f;
  o.top_k = 5;
  o.seed = 12345;
  const std::vector<float> logits = {0.3f, 1.2f, -0.5f, 2.0f, 0.9f, 1.5f, -2.0f, 0.0f, 1.1f, -1.0f};
  Sampler s(o, logits.size());
  const std::vector<float> p = s.probabilities(logits);
  size_t nonzero = 0;
  for (const float x : p) nonzero += x > 0;
  REQUIRE(nonzero == 5);  // top-p keeps 6 tokens, top-k the first 5 of them

  const int draws = 200000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> l = logits;
    ++counts[size_t(s.sample(l))];
  }
  double chi2 = 0, max_diff = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double freq = double(counts[i]) / draws;
    if (p[i] == 0.0f) {
      CHECK(counts[i] == 0);
      continue;
    }
    const double expected = double(p[i]) * draws;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    max_diff = std::max(max_diff, std::abs(freq - double(p[i])));
  }
  CHECK(chi2 < 18.5);  // 4 degrees of freedom: p = 0.001
  CHECK(max_diff < 0.005);
}

TEST_CASE("A seed gives the same tokens every time and everywhere", "[sampler]") {
  const size_t vocab = 65536;
  std::vector<float> base(vocab);
  rwkv::Rng r(77);
  for (float& x : base) x = float(r.uniform() * 12.0 - 6.0);
  SamplerOptions o;
  o.top_p = 0.9f;
  o.top_k = 0;
  o.temperature = 1.1f;
  o.seed = 2024;
  const auto run = [&](Sampler& s) {
    std::vector<int32_t> out;
    for (int i = 0; i < 40; ++i) {
      std::vector<float> l = base;
      l[size_t(i * 997) % vocab] += 8.0f;  // varies the distribution per step
      const int32_t t = s.sample(l);
      s.accept(t);
      out.push_back(t);
    }
    return out;
  };
  Sampler a(o, vocab), b(o, vocab);
  const auto first = run(a);
  CHECK(run(b) == first);
  a.reset();
  CHECK(run(a) == first);
  // Recorded natively; the wasm build must draw exactly the same.
  const std::vector<int32_t> recorded = {3527, 51653, 4720, 10622, 50667, 15324, 26429, 17170, 36634, 3254, 47589, 61216};
  CHECK(std::vector<int32_t>(first.begin(), first.begin() + 12) == recorded);
}
