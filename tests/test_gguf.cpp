// GGUF files (formats/gguf.h) made with the project's writer (js/formats/gguf-writer.mjs,
// by tests/reference/make-gguf-fixtures.mjs) against golden runs: the shared official
// ones, the JS reference's on the fixtures, and, for the k-quants, the JS reference on
// the weights as an independent decoder (tests/reference/ggml-dequant.mjs) reads them.
// Then the errors: truncated files, unknown types, wrong shapes and names.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "kernels/relaxed/relaxed.h"
#include "formats/gguf.h"
#include "model/loader.h"
#include "model/runner.h"
#include "text/tokenizer.h"
#include "test_support.h"

using namespace rwkv;
namespace fs = std::filesystem;

namespace {

Bytes to_bytes(const std::string& s) {
  Bytes b = Bytes::allocate(s.size());
  std::memcpy(b.data.get(), s.data(), s.size());
  return b;
}

std::unique_ptr<Model> load_gguf(const std::string& path, const LoadOptions& options = {}) {
  auto s = read_file(path);
  if (!s) throw Error("cannot read " + path);
  return Model::load(to_bytes(*s), options);
}

// The "tokens" list of a golden run's .json.
std::vector<int32_t> golden_tokens(const std::string& json) {
  std::vector<int32_t> out;
  const auto text = read_file(json);
  if (!text) return out;
  const size_t t = text->find('[', text->find("\"tokens\""));
  const size_t end = text->find(']', t);
  for (size_t p = t + 1; p < end;) {
    char* e;
    const long v = std::strtol(text->c_str() + p, &e, 10);
    if (e == text->c_str() + p) {
      ++p;
      continue;
    }
    out.push_back(int32_t(v));
    p = size_t(e - text->c_str());
  }
  return out;
}

struct Run {
  float max_abs = 0;
  double agree = 1;  // share of positions with the golden top token
};

// Steps through the golden run's tokens (and prefills them: the same logits within 1e-4).
Run run_golden(const Model& model, const std::string& golden) {
  const auto tokens = golden_tokens(golden + ".json");
  const auto want = read_f32(golden + ".logits.f32");
  const size_t T = tokens.size(), V = size_t(model.config().V);
  REQUIRE(want.size() == T * V);
  Runner runner(model, 16);
  State s1(model.config()), s2(model.config());
  std::vector<float> prefill(T * V);
  kernels::relaxed::set_enabled(false);  // the SIMD128 kernels, as step (the relaxed ones: test_model.cpp)
  runner.prefill(s2, tokens, prefill.data());
  kernels::relaxed::set_enabled(true);
  Run r;
  size_t same = 0;
  for (size_t t = 0; t < T; ++t) {
    auto l = runner.step(s1, tokens[t]);
    const float* w = want.data() + t * V;
    for (size_t i = 0; i < V; ++i) {
      r.max_abs = std::max(r.max_abs, std::fabs(l[i] - w[i]));
      CHECK(std::fabs(prefill[t * V + i] - l[i]) <= 1e-4f);
    }
    same += std::max_element(l.begin(), l.end()) - l.begin() == std::max_element(w, w + V) - w;
  }
  r.agree = double(same) / double(T);
  return r;
}

// Bounds a few times above what was measured; Q8_0/Q4_0 as the int8/q4 golden tests.
// Every model here holds bf16 values (the fp32 tiny model too), which F16 holds exactly.
struct Bound {
  const char* type;
  DType held;  // the matrices' type when loaded as they are
  float max_abs;
  double agree;
};
constexpr Bound kBounds[] = {
    {"F32", DType::F32, 5e-4f, 1.0}, {"F16", DType::F32, 5e-4f, 1.0}, {"BF16", DType::BF16, 5e-4f, 1.0},
    {"Q8_0", DType::Q8_0, 0.5f, 0.9}, {"Q4_0", DType::Q4_0, 3.0f, 0.6},
};

void check_types(const std::string& base, const std::string& golden) {
  for (const Bound& b : kBounds) {
    const std::string file = fixture(base + "." + b.type + ".gguf");
    if (!fs::exists(file)) {
      WARN("skipped: " << file << " is missing (run: node tests/reference/make-gguf-fixtures.mjs)");
      continue;
    }
    auto model = load_gguf(file);
    const Run r = run_golden(*model, golden);
    std::printf("gguf %-44s max |logit diff| %.3g, top-1 agreement %.1f%%, held as %s\n",
                fs::path(file).filename().string().c_str(), r.max_abs, 100 * r.agree, dtype_name(model->weight_dtype()));
    INFO(file);
    CHECK(model->weight_dtype() == b.held);
    CHECK(r.max_abs <= b.max_abs);
    CHECK(r.agree >= b.agree);
  }
}

// The file with bytes replaced at the first occurrence of `find` (plus `skip` bytes).
std::string patched(std::string file, const std::string& find, size_t skip, const std::string& with) {
  const size_t at = file.find(find);
  REQUIRE(at != std::string::npos);
  file.replace(at + skip, with.size(), with);
  return file;
}
std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

}  // namespace

TEST_CASE("GGUF files of the fixtures and the golden models give the golden logits", "[gguf][golden]") {
  if (fs::exists(fixture("fix-L3-C64-H2.seq40.json")))
    check_types("fix-L3-C64-H2", fixture("fix-L3-C64-H2.seq40"));
  else
    WARN("skipped the fixtures: missing in " << fixture_dir());
  const std::string golden = std::string(reference_dir()) + "/golden/";
  if (!fs::exists(golden)) {
    WARN("skipped the golden models: " << golden << " is missing");
    return;
  }
  check_types("tiny-rwkv-7v0-834K.fp32", golden + "tiny-rwkv-7v0-834K.fp32.fox");
  check_types("rand-L2-D128-V1000", golden + "rand-L2-D128-V1000.seq48");
  // With the World vocabulary in its metadata, Q8_0, loaded as int8 and as q4.
  const std::string world = fixture("rand-L2-D128-V65536.Q8_0.gguf");
  if (fs::exists(world)) {
    for (DType t : {DType::Q8_0, DType::Q4_0}) {
      auto model = load_gguf(world, LoadOptions{t});
      const Run r = run_golden(*model, golden + "rand-L2-D128-V65536.eiffel");
      INFO(dtype_name(t));
      CHECK(model->weight_dtype() == t);
      CHECK(r.max_abs <= (t == DType::Q8_0 ? 0.5f : 3.0f));
    }
  }
}

TEST_CASE("k-quant GGUF matrices decode as ggml's reference decoder reads them", "[gguf][kquant]") {
  for (const char* t : {"Q4_K", "Q5_K", "Q6_K"}) {
    const std::string file = fixture(std::string("fix-L2-C256.") + t + ".gguf");
    const std::string golden = fixture(std::string("gguf-golden/fix-L2-C256.") + t + ".seq16");
    if (!fs::exists(file) || !fs::exists(golden + ".json")) {
      WARN("skipped: " << file << " is missing (run: node tests/reference/make-gguf-fixtures.mjs)");
      continue;
    }
    INFO(t);
    // Decoded to float32: the same weights as the JS reference ran on.
    auto exact = load_gguf(file, LoadOptions{DType::F32});
    const Run r = run_golden(*exact, golden);
    std::printf("gguf %-24s as F32: max |logit diff| %.3g against the JS reference\n", t, r.max_abs);
    CHECK(r.max_abs <= 5e-4f);
    CHECK(r.agree == 1.0);
    // As they are: k-quants become bf16; requantized as int8 and q4 on request.
    CHECK(load_gguf(file)->weight_dtype() == DType::BF16);
    for (DType q : {DType::BF16, DType::Q8_0, DType::Q4_0}) {
      auto model = load_gguf(file, LoadOptions{q});
      const Run rq = run_golden(*model, golden);
      INFO(dtype_name(q));
      CHECK(model->weight_dtype() == q);
      CHECK(rq.max_abs <= (q == DType::Q4_0 ? 3.0f : 0.5f));
    }
  }
}

TEST_CASE("every block type decodes as the reference decoder does, bit for bit", "[gguf][kquant]") {
  for (const char* name : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"}) {
    const auto bytes = read_file(fixture(std::string("ggml-blocks.") + name + ".bin"));
    const auto want = read_f32(fixture(std::string("ggml-blocks.") + name + ".f32"));
    if (!bytes || want.empty()) {
      WARN("skipped: " << fixture(std::string("ggml-blocks.") + name + ".bin") << " is missing");
      continue;
    }
    uint32_t type = 0;
    while (ggml_type_name(type) != name) ++type;
    INFO(name);
    REQUIRE(ggml_type_readable(type));
    REQUIRE(bytes->size() == want.size() / size_t(ggml_block_size(type)) * ggml_block_bytes(type));
    std::vector<float> got(want.size());
    ggml_to_float(type, reinterpret_cast<const uint8_t*>(bytes->data()), int64_t(got.size()), got.data());
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], 4) != 0;
    CHECK(differ == 0);
  }
}

TEST_CASE("the World vocabulary of a GGUF's metadata is the vocabulary file's", "[gguf][vocab]") {
  const std::string file = fixture("rand-L2-D128-V65536.Q8_0.gguf");
  const auto text = read_file(std::string(reference_dir()) + "/vocab/rwkv_vocab_v20230424.txt");
  if (!fs::exists(file) || !text) {
    WARN("skipped: " << file << " or the shared World vocabulary is missing");
    return;
  }
  auto model = load_gguf(file);
  REQUIRE(!model->vocab().empty());
  const Tokenizer from_gguf = Tokenizer::from_vocab_text(model->vocab());
  const Tokenizer from_file = Tokenizer::from_vocab_text(*text);
  REQUIRE(from_gguf.vocab_size() == from_file.vocab_size());
  size_t differ = 0;
  for (int32_t id = 0; id < int32_t(from_file.vocab_size()); ++id) differ += from_gguf.token_bytes(id) != from_file.token_bytes(id);
  CHECK(differ == 0);
  const std::string sample = "The Eiffel Tower is in Paris.\n\nUser: 你好 'quoted' \"double\" back\\slash\ttab \xe4\xb8";
  CHECK(from_gguf.encode(sample) == from_file.encode(sample));
}

TEST_CASE("a GGUF file that is truncated, of another type or shape is refused by name", "[gguf][errors]") {
  const auto good = read_file(fixture("fix-L3-C64-H2.F16.gguf"));
  if (!good) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  auto error_of = [](const std::string& file) -> std::string {
    try {
      Model::load(to_bytes(file));
    } catch (const Error& e) {
      return e.what();
    }
    return "(loaded)";
  };
  CHECK_NOTHROW(Model::load(to_bytes(*good)));
  CHECK_THAT(error_of(good->substr(0, good->size() * 6 / 10)), Catch::Contains("past the end") && Catch::Contains("truncated"));
  CHECK_THAT(error_of(good->substr(0, 300)), Catch::Contains("truncated: it ends inside its header"));
  // blk.1.time_mix_key.weight: name, then u32 dims (2), 2 x u64 ne, u32 type.
  const std::string key = "blk.1.time_mix_key.weight";
  CHECK_THAT(error_of(patched(*good, key, key.size() + 4 + 16, le32(16))),
             Catch::Contains("'blk.1.time_mix_key.weight' is of type IQ2_XXS, which this reader cannot read"));
  CHECK_THAT(error_of(patched(*good, key, key.size() + 4 + 16, le32(77))), Catch::Contains("of type type 77"));
  CHECK_THAT(error_of(patched(*good, key, key.size() + 4 + 8, le64(32))),
             Catch::Contains("'blk.1.time_mix_key.weight': expected shape [64, 64], found [64, 32]"));
  CHECK_THAT(error_of(patched(*good, "blk.2.time_mix_g2.weight", 0, "blk.2.time_mix_g3.weight")),
             Catch::Contains("'blk.2.time_mix_g3.weight' is not part of an RWKV-7 model"));
  CHECK_THAT(error_of(patched(*good, "general.architecture", 20 + 4 + 8, "rwkv6")), Catch::Contains("'rwkv6' model; only RWKV-7"));
  CHECK_THAT(error_of(patched(*good, "GGUF", 4, le32(1))), Catch::Contains("GGUF version 1 is not supported"));
  CHECK_THAT(error_of(patched(*good, "rwkv7.block_count", 17 + 4, le32(4))), Catch::Contains("lacks tensor 'blk.3."));
  // read_checkpoint without room for converted tensors refuses a GGUF file by name.
  CHECK_THROWS_WITH(read_checkpoint(reinterpret_cast<const uint8_t*>(good->data()), good->size()), Catch::Contains("GGUF"));
}

TEST_CASE("the GGUF header parser wants more bytes until the header is whole", "[gguf]") {
  const auto good = read_file(fixture("fix-L3-C64-H2.Q8_0.gguf"));
  if (!good) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(good->data());
  const GgufHeader h = parse_gguf_header(p, good->size());
  CHECK(h.version == 3);
  CHECK(h.alignment == 32);
  CHECK(h.data_start % 32 == 0);
  CHECK(h.tensors.size() == 6 + 3 * 28);
  for (size_t n : {size_t(0), size_t(4), size_t(100), size_t(h.data_start - 1)}) CHECK_FALSE(try_parse_gguf_header(p, n));
  CHECK(try_parse_gguf_header(p, size_t(h.data_start)));
  const auto sources = gguf_sources(h, good->size());
  // 6 token-shift mixes from one fused tensor, layer 0's v0/v1/v2 not read.
  CHECK(std::count_if(sources.begin(), sources.end(), [](const GgufSource& s) { return s.key.ends_with(".att.x_g"); }) == 3);
  CHECK(std::none_of(sources.begin(), sources.end(), [](const GgufSource& s) { return s.key == "blocks.0.att.v1"; }));
  for (const auto& s : sources)
    if (s.key == "blocks.2.att.w1") {
      CHECK(s.transposed);
      CHECK(s.shape == std::vector<int64_t>{64, 16});
    }
}

namespace {

// `file` through a StreamLoader in chunks of `chunk(i)` bytes, started as soon as it has a plan.
template <typename Chunk>
std::unique_ptr<Model> stream_gguf(const std::string& file, const LoadOptions& options, Chunk chunk) {
  StreamLoader L;
  size_t at = 0;
  for (size_t i = 0; at < file.size(); ++i) {
    if (L.planned() && !L.started()) L.start(options);
    const std::span<uint8_t> w = L.window();
    REQUIRE(!w.empty());
    const size_t k = std::min({chunk(i), file.size() - at, w.size()});
    std::memcpy(w.data(), file.data() + at, k);
    L.commit(k);
    at += k;
  }
  if (L.planned() && !L.started()) L.start(options);
  return L.finish();
}

void check_same_model(const Model& a, const Model& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const HeldTensor &x = a.tensors()[i], &y = b.tensors()[i];
    INFO("tensor " << x.name);
    REQUIRE(x.name == y.name);
    REQUIRE(x.dtype == y.dtype);
    REQUIRE(x.bytes == y.bytes);
    REQUIRE(std::memcmp(x.data, y.data, x.bytes) == 0);
  }
  CHECK(a.vocab() == b.vocab());
}

}  // namespace

TEST_CASE("GGUF files stream into the same model as loaded whole, in chunks of any size", "[gguf][stream]") {
  const std::optional<DType> precisions[] = {std::nullopt, DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0};
  size_t found = 0;
  for (const char* name : {"fix-L3-C64-H2.F16.gguf", "fix-L3-C64-H2.Q8_0.gguf", "fix-L3-C64-H2.Q4_0.gguf", "fix-L3-C64-H2.BF16.gguf",
                           "fix-L2-C256.Q4_K.gguf", "fix-L2-C256.Q6_K.gguf"}) {
    const auto file = read_file(fixture(name));
    if (!file) continue;
    ++found;
    for (const auto& q : precisions) {
      INFO(name << " as " << (q ? dtype_name(*q) : "stored"));
      LoadOptions o;
      o.matrices = q;
      const auto whole = Model::load(to_bytes(*file), o);
      for (size_t chunk : {file->size(), size_t(65536), size_t(4099), size_t(61)}) {
        INFO("chunks of " << chunk);
        check_same_model(*whole, *stream_gguf(*file, o, [=](size_t) { return chunk; }));
      }
      std::mt19937 rng(uint32_t(file->size()));
      check_same_model(*whole, *stream_gguf(*file, o, [&](size_t) { return size_t(1) + rng() % (rng() % 2 ? 16 : 65536); }));
    }
    // One byte at a time: the header is asked for in pieces that never pass its end.
    LoadOptions o;
    o.matrices = DType::Q8_0;
    check_same_model(*Model::load(to_bytes(*file), o), *stream_gguf(*file, o, [](size_t) { return size_t(1); }));
  }
  if (found < 6) WARN("some GGUF fixtures are missing (run: node tests/reference/make-gguf-fixtures.mjs)");
  // The World vocabulary of the metadata comes with the streamed model.
  if (const auto world = read_file(fixture("rand-L2-D128-V65536.Q8_0.gguf"))) {
    check_same_model(*Model::load(to_bytes(*world)), *stream_gguf(*world, LoadOptions{}, [](size_t) { return size_t(1) << 20; }));
    // A stream cut short names where it ended.
    CHECK_THROWS_WITH(stream_gguf(world->substr(0, world->size() / 2), LoadOptions{}, [](size_t) { return size_t(1) << 16; }),
                      Catch::Contains("truncated"));
  }
}
