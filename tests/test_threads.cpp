// The Runner on a thread pool gives the same bits as on one thread (every product is split
// by rows or tokens, never inside a sum), for step and prefill.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "kernels/kernels.h"
#include "model/runner.h"
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

struct Run {
  std::vector<float> step_logits, prefill_logits, state;
};

Run run(const Model& model, int threads) {
  const Config& c = model.config();
  Runner runner(model, 32);
  runner.set_threads(threads);
  std::vector<int32_t> tokens(70);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 37 + 11) % size_t(c.V));
  Run out;
  State a(c);
  for (int i = 0; i < 5; ++i) {
    auto l = runner.step(a, tokens[size_t(i)]);
    out.step_logits.insert(out.step_logits.end(), l.begin(), l.end());
  }
  out.prefill_logits.resize(tokens.size() * size_t(c.V));
  runner.prefill(a, tokens, out.prefill_logits.data());
  out.state.assign(a.data(), a.data() + a.size());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("a Runner on several threads gives the same bits as on one", "[threads]") {
  auto model = fixture_model();
  if (!model) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  kernels::set_parallel_min(0);  // the fixture is small: take the threaded paths anyway
  const Run one = run(*model, 1);
  for (int threads : {2, 3}) {
    const Run many = run(*model, threads);
    INFO(threads << " threads");
    CHECK(same_bits(one.step_logits, many.step_logits));
    CHECK(same_bits(one.prefill_logits, many.prefill_logits));
    CHECK(same_bits(one.state, many.state));
  }
  kernels::set_parallel_min(size_t(1) << 16);
}
