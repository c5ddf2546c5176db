// The per-token trace (src/model/trace.h, docs/inspect.md): tracing changes no logits
// and no state, prefill records what steps record, the generator hands out one record
// per token it feeds. The numbers themselves are checked against the JS reference in
// tests/js/trace.test.mjs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "model/runner.h"
#include "text/generate.h"
#include "test_support.h"

using namespace rwkv;

namespace {

std::unique_ptr<Model> fixture_model() {
  const std::string path = fixture("fix-L3-C64-H2.pth");
  auto s = read_file(path);
  if (!s) return nullptr;
  Bytes b = Bytes::allocate(s->size());
  std::memcpy(b.data.get(), s->data(), s->size());
  return Model::load(std::move(b));
}

std::vector<int32_t> some_tokens(size_t n, int V) {
  std::vector<int32_t> out(n);
  uint32_t seed = 12345;
  for (auto& t : out) {
    seed = seed * 1664525u + 1013904223u;
    t = int32_t((seed >> 8) % uint32_t(V));
  }
  return out;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace

TEST_CASE("tracing changes no logits and no state, bit for bit", "[trace]") {
  auto model = fixture_model();
  if (!model) {
    WARN("skipped: the fixtures are missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const Config& c = model->config();
  const auto tokens = some_tokens(150, c.V);
  for (int threads : {1, 2}) {
    Runner runner(*model, 64);
    runner.set_threads(threads);
    State plain(c), traced(c);
    std::vector<float> lp(tokens.size() * c.V), lt(tokens.size() * c.V);
    runner.prefill(plain, tokens, lp.data());
    Trace trace(c);
    runner.set_trace(&trace);
    runner.prefill(traced, tokens, lt.data());
    INFO("threads " << threads);
    CHECK(same_bits(lp.data(), lt.data(), lp.size()));
    CHECK(same_bits(plain.data(), traced.data(), plain.size()));
    CHECK(trace.tokens() == tokens.size());
    const auto st = runner.step(traced, 7);
    const std::vector<float> a(st.begin(), st.end());
    runner.set_trace(nullptr);
    const auto b = runner.step(plain, 7);
    CHECK(same_bits(a.data(), b.data(), b.size()));
    CHECK(trace.tokens() == tokens.size() + 1);
  }
}

TEST_CASE("prefill records every token as steps do", "[trace]") {
  auto model = fixture_model();
  if (!model) {
    WARN("skipped: the fixtures are missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const Config& c = model->config();
  const auto tokens = some_tokens(100, c.V);
  Runner runner(*model, 16);
  Trace by_prefill(c), by_step(c);
  State a(c), b(c);
  runner.set_trace(&by_prefill);
  runner.prefill(a, tokens);
  runner.set_trace(&by_step);
  for (int32_t t : tokens) runner.step(b, t);
  REQUIRE(by_prefill.tokens() == tokens.size());
  REQUIRE(by_step.tokens() == tokens.size());
  const size_t R = by_step.record_size();
  CHECK(R == size_t(c.n_layer) * c.H * kTraceFields + c.n_layer);
  size_t bad = 0;
  for (size_t j = 0; j < tokens.size() * R; ++j) {
    const float x = by_prefill.data()[j], y = by_step.data()[j];
    if (std::isnan(x) != std::isnan(y) || (!std::isnan(x) && std::fabs(x - y) > 1e-4f * (1 + std::fabs(y)))) ++bad;
  }
  CHECK(bad == 0);
  // Every field in its range.
  for (size_t t = 0; t < tokens.size(); ++t)
    for (int i = 0; i < c.n_layer; ++i) {
      for (int h = 0; h < c.H; ++h) {
        const float* f = by_step.data() + t * R + (size_t(i) * c.H + h) * kTraceFields;
        CHECK(f[kStateNorm] > 0);
        CHECK((f[kDecayMean] > 0.545f && f[kDecayMean] < 1));
        CHECK(f[kDecayStd] >= 0);
        CHECK(f[kHalfLife] == Approx(std::log(0.5) / std::log(double(f[kDecayMean]))).epsilon(1e-4));
        CHECK((f[kRate] > 0 && f[kRate] < 1));
        CHECK(f[kUpdate] >= 0);
        CHECK(std::isnan(f[kValueMix]) == (i == 0));
      }
      CHECK(by_step.data()[t * R + size_t(c.n_layer) * c.H * kTraceFields + i] > 0);
    }
}

TEST_CASE("a traced generation hands out one record per token fed", "[trace]") {
  auto model = fixture_model();
  if (!model) {
    WARN("skipped: the fixtures are missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const Config& c = model->config();
  Runner runner(*model);
  State state(c);
  const auto vocab = read_file(fixture("fix-vocab-300.txt"));
  REQUIRE(vocab);
  const Tokenizer tok = Tokenizer::from_vocab_text(*vocab);
  GenerateOptions o;
  o.max_tokens = 5;
  o.trace = true;
  o.stop_at_end_of_text = false;
  o.sampler.temperature = 0;
  const auto prompt = some_tokens(Generator::kPrefillSlice + 10, c.V);
  Generator gen(runner, state, tok, prompt, o);
  std::vector<size_t> counts;
  for (;;) {
    const auto p = gen.next();
    REQUIRE(gen.trace() != nullptr);
    counts.push_back(gen.trace()->tokens());
    if (p.done) break;
  }
  // Two prompt slices, then one record per generated token; the last next() feeds the
  // fifth token and ends there.
  CHECK(counts == std::vector<size_t>{Generator::kPrefillSlice, 10, 1, 1, 1, 1, 1});

  GenerateOptions off = o;
  off.trace = false;
  State s2(c);
  Generator plain(runner, s2, tok, prompt, off);
  while (!plain.next().done) CHECK(plain.trace() == nullptr);
  CHECK(same_bits(state.data(), s2.data(), state.size()));
}
