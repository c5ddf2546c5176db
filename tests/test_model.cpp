// The model against the official reference implementation's golden runs, prefill
// against step, and loader errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "kernels/relaxed/relaxed.h"
#include "model/runner.h"
#include "test_support.h"

using namespace rwkv;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {}) {
  auto s = read_file(path);
  if (!s) throw Error("cannot read " + path);
  Bytes b = Bytes::allocate(s->size());
  std::memcpy(b.data.get(), s->data(), s->size());
  return Model::load(std::move(b), options);
}

// The few fields of a golden run's .json: "model" and the "tokens" list.
struct GoldenRun {
  std::string name, dir, model;
  std::vector<int32_t> tokens;
};

std::optional<GoldenRun> read_golden(const fs::path& json) {
  auto text = read_file(json.string());
  if (!text) return std::nullopt;
  GoldenRun g;
  g.dir = json.parent_path().string();
  g.name = json.stem().string();
  const size_t m = text->find("\"model\"");
  const size_t q1 = text->find('"', text->find(':', m) + 1);
  g.model = text->substr(q1 + 1, text->find('"', q1 + 1) - q1 - 1);
  const size_t t = text->find('[', text->find("\"tokens\""));
  const size_t end = text->find(']', t);
  for (size_t p = t + 1; p < end;) {
    char* e;
    const long v = std::strtol(text->c_str() + p, &e, 10);
    if (e == text->c_str() + p) { ++p; continue; }
    g.tokens.push_back(int32_t(v));
    p = size_t(e - text->c_str());
  }
  return g;
}

// Golden runs of a folder, each with the model files that hold its weights: the
// named file and, where present, a .safetensors twin with the same tensors.
std::vector<std::pair<GoldenRun, std::string>> golden_cases(const std::string& golden_dir, const std::string& model_dir) {
  std::vector<std::pair<GoldenRun, std::string>> out;
  std::error_code ec;
  std::vector<fs::path> jsons;
  for (const auto& e : fs::directory_iterator(golden_dir, ec))
    if (e.path().extension() == ".json" && e.path().filename() != "tokenizer.json") jsons.push_back(e.path());
  std::sort(jsons.begin(), jsons.end());
  for (const auto& j : jsons) {
    auto g = read_golden(j);
    if (!g) continue;
    const std::string model = model_dir + "/" + g->model;
    out.emplace_back(*g, model);
    const std::string st = model.substr(0, model.rfind('.')) + ".safetensors";
    if (fs::exists(st)) out.emplace_back(*g, st);
  }
  return out;
}

struct Diff {
  float max_abs = 0;
  size_t argmax_mismatch = 0;
};

Diff compare_rows(const float* got, const float* want, size_t rows, size_t V) {
  Diff d;
  for (size_t t = 0; t < rows; ++t) {
    const float* a = got + t * V;
    const float* b = want + t * V;
    for (size_t i = 0; i < V; ++i) d.max_abs = std::max(d.max_abs, std::fabs(a[i] - b[i]));
    if (std::max_element(a, a + V) - a != std::max_element(b, b + V) - b) ++d.argmax_mismatch;
  }
  return d;
}

void check_golden(const std::string& golden_dir, const std::string& model_dir) {
  const auto cases = golden_cases(golden_dir, model_dir);
  REQUIRE(!cases.empty());
  for (const auto& [g, model_path] : cases) {
    const auto want_logits = read_f32(g.dir + "/" + g.name + ".logits.f32");
    const auto want_state = read_f32(g.dir + "/" + g.name + ".state.f32");
    const auto gpt_logits = read_f32(g.dir + "/" + g.name + ".gpt_logits.f32");
    auto model = load_model(model_path);
    const Config& c = model->config();
    const size_t T = g.tokens.size(), V = size_t(c.V);
    REQUIRE(want_logits.size() == T * V);
    REQUIRE(want_state.size() == c.state_size());
    Runner runner(*model, 16);  // chunks of 16: longer runs cross chunk borders

    // RNN mode, one token at a time.
    State s1(c);
    std::vector<float> step_logits(T * V);
    for (size_t t = 0; t < T; ++t) {
      auto l = runner.step(s1, g.tokens[t]);
      std::copy(l.begin(), l.end(), step_logits.begin() + t * V);
    }
    // GPT mode, all at once, every row of logits returned.
    State s2(c);
    std::vector<float> prefill_logits(T * V);
    runner.prefill(s2, g.tokens, prefill_logits.data());

    const Diff ds = compare_rows(step_logits.data(), want_logits.data(), T, V);
    const Diff dp = compare_rows(prefill_logits.data(), want_logits.data(), T, V);
    const Diff ss = compare_rows(s1.data(), want_state.data(), 1, want_state.size());
    const Diff sp = compare_rows(s2.data(), want_state.data(), 1, want_state.size());
    std::printf("golden %-40s %-38s step: logits %.3g state %.3g | prefill: logits %.3g state %.3g",
                g.name.c_str(), fs::path(model_path).filename().string().c_str(), ds.max_abs, ss.max_abs,
                dp.max_abs, sp.max_abs);
    if (!gpt_logits.empty()) {
      const Diff dg = compare_rows(prefill_logits.data(), gpt_logits.data(), T, V);
      std::printf(" | vs official parallel %.3g", dg.max_abs);
      CHECK(dg.max_abs <= 5e-4f);
    }
    std::printf("\n");
    INFO(g.name << " with " << model_path);
    CHECK(ds.max_abs <= 5e-4f);
    CHECK(dp.max_abs <= 5e-4f);
    CHECK(ds.argmax_mismatch == 0);
    CHECK(dp.argmax_mismatch == 0);
    CHECK(ss.max_abs <= 5e-4f);
    CHECK(sp.max_abs <= 5e-4f);
  }
}

// The golden runs with the matrices quantized on load: the loss against the official
// logits (max |diff| and the share of positions whose top token is unchanged), and
// prefill against step (the same integer kernels: the same bits).
void check_quantized(const std::string& golden_dir, const std::string& model_dir) {
  for (const auto& [g, model_path] : golden_cases(golden_dir, model_dir)) {
    if (model_path.ends_with(".safetensors")) continue;  // the same weights as the .pth
    const auto want = read_f32(g.dir + "/" + g.name + ".logits.f32");
    for (DType t : {DType::Q8_0, DType::Q4_0}) {
      auto model = load_model(model_path, LoadOptions{t});
      const size_t T = g.tokens.size(), V = size_t(model->config().V);
      REQUIRE(want.size() == T * V);
      Runner runner(*model, 16);
      State s1(model->config()), s2(model->config());
      std::vector<float> step_logits(T * V), prefill_logits(T * V);
      for (size_t i = 0; i < T; ++i) {
        auto l = runner.step(s1, g.tokens[i]);
        std::copy(l.begin(), l.end(), step_logits.begin() + i * V);
      }
      kernels::relaxed::set_enabled(false);  // the SIMD128 kernels (the relaxed ones: below)
      runner.prefill(s2, g.tokens, prefill_logits.data());
      kernels::relaxed::set_enabled(true);
      const Diff d = compare_rows(step_logits.data(), want.data(), T, V);
      const double agree = 1.0 - double(d.argmax_mismatch) / double(T);
      std::printf("quantized %-38s %-5s max |logit diff| %.3g, top-1 agreement %.1f%% (%zu/%zu), %s\n",
                  g.name.c_str(), dtype_name(t), d.max_abs, 100 * agree, T - d.argmax_mismatch, T,
                  dtype_name(model->weight_dtype()));
      INFO(g.name << " " << dtype_name(t));
      CHECK(model->weight_dtype() == t);
      CHECK(compare_rows(prefill_logits.data(), step_logits.data(), T, V).max_abs == 0.0f);
      // Bounds a few times above what was measured (the random models' flat logits make
      // near-ties; the trained tiny model keeps 100% / 97.7% of its top tokens).
      CHECK(agree >= (t == DType::Q8_0 ? 0.9 : 0.6));
      CHECK(d.max_abs <= (t == DType::Q8_0 ? 0.5f : 3.0f));
      // Q4_0 prefill by the relaxed-SIMD kernels (wasm, where the host runs them): int8 x
      // per block, so other bits than step, within the same bounds.
      if (t == DType::Q4_0 && kernels::relaxed::module()) {
        State s3(model->config());
        runner.prefill(s3, g.tokens, prefill_logits.data());
        const Diff r = compare_rows(prefill_logits.data(), want.data(), T, V);
        const double ragree = 1.0 - double(r.argmax_mismatch) / double(T);
        std::printf("quantized %-38s %-5s relaxed-SIMD prefill: max |logit diff| %.3g, top-1 agreement %.1f%%\n",
                    g.name.c_str(), dtype_name(t), r.max_abs, 100 * ragree);
        CHECK(ragree >= 0.6);
        CHECK(r.max_abs <= 3.0f);
      }
    }
  }
}

// A model for the structural tests: the project's fixture, else a shared reference model.
std::unique_ptr<Model> any_model() {
  const std::string fix = fixture("fix-L3-C64-H2.pth");
  if (fs::exists(fix)) return load_model(fix);
  const std::string ref = std::string(reference_dir()) + "/models/rand-L2-D128-V1000.pth";
  if (fs::exists(ref)) return load_model(ref);
  return nullptr;
}

std::vector<int32_t> pseudo_tokens(size_t n, int V, uint32_t seed) {
  std::vector<int32_t> out(n);
  for (auto& t : out) {
    seed = seed * 1664525u + 1013904223u;
    t = int32_t((seed >> 8) % uint32_t(V));
  }
  return out;
}

}  // namespace

TEST_CASE("matches the official implementation's golden runs", "[golden][shared]") {
  const std::string dir = std::string(reference_dir()) + "/golden";
  if (!fs::exists(dir)) {
    WARN("skipped: " << dir << " is missing (the shared reference data is not on this machine)");
    return;
  }
  check_golden(dir, std::string(reference_dir()) + "/models");
}

TEST_CASE("matches the independent JS reference on the project's own fixtures", "[golden][fixtures]") {
  const std::string dir = fixture_dir();
  if (!fs::exists(dir + "/fix-L3-C64-H2.seq40.json")) {
    WARN("skipped: fixtures missing in " << dir << " (run: node scripts/make-fixtures.mjs " << dir << ")");
    return;
  }
  check_golden(dir, dir);
}

TEST_CASE("int8 and 4-bit weights stay close to the golden runs", "[golden][quant]") {
  const std::string dir = std::string(reference_dir()) + "/golden";
  if (fs::exists(dir)) check_quantized(dir, std::string(reference_dir()) + "/models");
  else WARN("skipped the official golden runs: " << dir << " is missing");
  const std::string fix = fixture_dir();
  if (fs::exists(fix + "/fix-L3-C64-H2.seq40.json")) check_quantized(fix, fix);
  else WARN("skipped the fixtures: missing in " << fix << " (run: node scripts/make-fixtures.mjs " << fix << ")");
}

TEST_CASE("prefill of T tokens equals T steps", "[prefill]") {
  auto model = any_model();
  if (!model) {
    WARN("skipped: neither the fixtures nor ../shared/reference models are present");
    return;
  }
  const Config& c = model->config();
  Runner runner(*model, 64);
  for (size_t T : {1, 2, 7, 64, 300}) {
    const auto tokens = pseudo_tokens(T, c.V, uint32_t(T));
    State a(c), b(c);
    std::vector<float> last_step;
    for (int32_t tok : tokens) {
      auto l = runner.step(a, tok);
      last_step.assign(l.begin(), l.end());
    }
    auto l = runner.prefill(b, tokens);
    const Diff dl = compare_rows(l.data(), last_step.data(), 1, c.V);
    const Diff ds = compare_rows(b.data(), a.data(), 1, a.size());
    INFO("T = " << T);
    CHECK(dl.max_abs <= 1e-4f);
    CHECK(dl.argmax_mismatch == 0);
    CHECK(ds.max_abs <= 1e-4f);
  }
}

TEST_CASE("prefill split into chunks equals one prefill", "[prefill]") {
  auto model = any_model();
  if (!model) {
    WARN("skipped: neither the fixtures nor ../shared/reference models are present");
    return;
  }
  const Config& c = model->config();
  const auto tokens = pseudo_tokens(300, c.V, 7);
  Runner big(*model, 300), small(*model, 16);
  State a(c), b(c), d(c);
  std::vector<float> la(300 * size_t(c.V));
  big.prefill(a, tokens, la.data());
  // The same tokens in three calls of awkward lengths, through 16-token chunks.
  std::span<const int32_t> all(tokens);
  std::vector<float> lb(300 * size_t(c.V));
  small.prefill(b, all.subspan(0, 100), lb.data());
  small.prefill(b, all.subspan(100, 7), lb.data() + 100 * size_t(c.V));
  small.prefill(b, all.subspan(107), lb.data() + 107 * size_t(c.V));
  CHECK(compare_rows(la.data(), lb.data(), 300, c.V).max_abs <= 1e-4f);
  CHECK(compare_rows(a.data(), b.data(), 1, a.size()).max_abs <= 1e-4f);
  // Last-row logits without the all-rows buffer are the same numbers.
  auto last = big.prefill(d, tokens);
  CHECK(compare_rows(last.data(), la.data() + 299 * size_t(c.V), 1, c.V).max_abs == 0.0f);
}

TEST_CASE("bad tokens and states are refused", "[errors]") {
  auto model = any_model();
  if (!model) {
    WARN("skipped: no model available");
    return;
  }
  const Config& c = model->config();
  Runner runner(*model);
  State s(c);
  CHECK_THROWS_WITH(runner.step(s, c.V), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(runner.step(s, -1), Catch::Contains("out of range"));
  Config other = c;
  other.n_layer += 1;
  State wrong(other);
  CHECK_THROWS_WITH(runner.step(wrong, 0), Catch::Contains("state has"));
  CHECK(runner.prefill(s, {}).empty());
}
