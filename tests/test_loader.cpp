// Checkpoint readers: both formats give the same tensors, and damaged or wrong files
// give an rwkv::Error that says what is wrong, never a crash.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <random>

#include "formats/pickle.h"
#include "model/runner.h"
#include "test_support.h"

using namespace rwkv;
namespace fs = std::filesystem;

namespace {

Bytes copy_bytes(const std::string& s, size_t n) {
  Bytes b = Bytes::allocate(n);
  std::memcpy(b.data.get(), s.data(), n);
  return b;
}

std::unique_ptr<Model> load_string(const std::string& s) { return Model::load(copy_bytes(s, s.size())); }

// The first logits of a zero state after a few tokens: a fingerprint of all weights.
std::vector<float> fingerprint(const Model& m) {
  Runner r(m);
  State s(m.config());
  auto l = r.prefill(s, std::vector<int32_t>{1, 2, 3, 0, 5});
  return {l.begin(), l.end()};
}

}  // namespace

TEST_CASE("the fixtures load with every dimension read from the file", "[loader][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  const auto st = read_file(fixture("fix-L3-C64-H2.f32.safetensors"));
  const auto f16 = read_file(fixture("fix-L2-C64-H1.fp16.pth"));
  if (!pth || !st || !f16) {
    WARN("skipped: fixtures missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  auto a = load_string(*pth);
  const Config& c = a->config();
  CHECK(c.n_layer == 3);
  CHECK(c.C == 64);
  CHECK(c.H == 2);
  CHECK(c.N == 32);
  CHECK(c.F == 224);
  CHECK(c.V == 300);
  CHECK(c.Dw == 16);
  CHECK(c.Da == 8);
  CHECK(c.Dv == 12);
  CHECK(c.Dg == 24);
  CHECK(a->weight_dtype() == DType::BF16);
  // bf16 is kept as bf16: the model holds the file and little more.
  CHECK(a->memory_bytes() < pth->size() + size_t(64) * 4 * 19 * 3 + 4096 * 8);

  // The f32 safetensors twin (bf16 values widened, no block-0 v0/v1/v2) gives the same numbers.
  auto b = load_string(*st);
  CHECK(b->weight_dtype() == DType::F32);
  const auto fa = fingerprint(*a), fb = fingerprint(*b);
  REQUIRE(fa.size() == fb.size());
  float d = 0;
  for (size_t i = 0; i < fa.size(); ++i) d = std::max(d, std::fabs(fa[i] - fb[i]));
  CHECK(d <= 1e-5f);

  // fp16 storages, a plain dict, another folder name and views sharing one storage.
  auto h = load_string(*f16);
  CHECK(h->config().n_layer == 2);
  CHECK(h->config().H == 1);
  CHECK(h->config().N == 64);
  CHECK(h->weight_dtype() == DType::F32);
}

TEST_CASE("a missing tensor, a wrong shape and a truncated file are named", "[loader][errors][fixtures]") {
  const auto missing = read_file(fixture("bad-missing-key.pth"));
  const auto shape = read_file(fixture("bad-shape.pth"));
  const auto trunc = read_file(fixture("bad-truncated.pth"));
  if (!missing || !shape || !trunc) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  CHECK_THROWS_WITH(load_string(*missing), Catch::Contains("blocks.1.att.key.weight") && Catch::Contains("(64, 64)"));
  CHECK_THROWS_WITH(load_string(*shape), Catch::Contains("blocks.2.ffn.value.weight") &&
                                             Catch::Contains("expected shape (64, 224)") && Catch::Contains("found (64, 200)"));
  CHECK_THROWS_WITH(load_string(*trunc), Catch::Contains("truncated") || Catch::Contains("zip"));
}

TEST_CASE("files cut short anywhere or with damaged bytes give errors, not crashes", "[loader][errors]") {
  std::vector<std::string> files;
  for (const auto& p : {fixture("fix-L3-C64-H2.pth"), fixture("fix-L3-C64-H2.f32.safetensors"),
                        std::string(reference_dir()) + "/models/rand-L2-D128-V1000.pth"})
    if (auto s = read_file(p)) files.push_back(*s);
  if (files.empty()) {
    WARN("skipped: no model files found");
    return;
  }
  for (const auto& f : files) {
    for (size_t n : {size_t(0), size_t(1), size_t(8), size_t(30), size_t(200), f.size() / 3, f.size() / 2,
                     f.size() - 100, f.size() - 22, f.size() - 1}) {
      INFO("cut to " << n << " of " << f.size() << " bytes");
      CHECK_THROWS_AS(Model::load(copy_bytes(f, n)), Error);
    }
    // Damage the header region (zip directory / pickle / JSON) a byte at a time.
    std::mt19937 rng(1);
    for (int trial = 0; trial < 300; ++trial) {
      std::string g = f;
      const size_t region = std::min<size_t>(g.size(), 4096);
      const size_t at = trial % 2 ? rng() % region : g.size() - 1 - rng() % region;
      g[at] = char(rng());
      try {
        load_string(g);  // a harmless change may still load
      } catch (const Error&) {
      }
    }
  }
}

TEST_CASE("files that are not checkpoints are told apart", "[loader][errors]") {
  CHECK_THROWS_WITH(load_string(""), Catch::Contains("empty"));
  CHECK_THROWS_WITH(load_string("hello world, not a model"), Catch::Contains("unrecognised model file"));
  // A safetensors header claiming more bytes than there are.
  std::string st(8, '\0');
  st[0] = 100;
  st += "{}";
  CHECK_THROWS_WITH(load_string(st), Catch::Contains("longer than the file"));
  // A valid safetensors file without the RWKV-7 tensors.
  std::string hdr = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  while (hdr.size() % 8) hdr += ' ';
  std::string ok(8, '\0');
  ok[0] = char(hdr.size());
  ok += hdr + std::string(4, '\0');
  CHECK_THROWS_WITH(load_string(ok), Catch::Contains("RWKV-7"));
}

TEST_CASE("inputs the fuzzers found are refused quickly and cleanly", "[loader][errors]") {
  auto safetensors = [](std::string header) {
    while (header.size() % 8) header += ' ';
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = char((header.size() >> (8 * i)) & 0xFF);
    return out + header;
  };
  // The most negative int64 in the JSON header (its negation overflowed).
  CHECK_THROWS_WITH(load_string(safetensors(R"({"a":-9223372036854775808})")), Catch::Contains("number too large"));
  // A layer index of 1023 with nothing below it once sized a 5 GB buffer.
  std::string big = safetensors(
      R"({"emb.weight":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},)"
      R"("blocks.0.att.r_k":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},)"
      R"("blocks.0.ffn.key.weight":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},)"
      R"("blocks.0.att.w1":{"dtype":"F32","shape":[4,1],"data_offsets":[0,16]},)"
      R"("blocks.0.att.a1":{"dtype":"F32","shape":[4,1],"data_offsets":[0,16]},)"
      R"("blocks.0.att.g1":{"dtype":"F32","shape":[4,1],"data_offsets":[0,16]},)"
      R"("blocks.1023.x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})");
  big += std::string(16, '\0');
  CHECK_THROWS_WITH(load_string(big), Catch::Contains("lacks tensor 'blocks.0.ln1.weight'"));
}

TEST_CASE("a pickle that keeps growing one dict stays linear", "[loader][errors]") {
  // PROTO 2, EMPTY_DICT, then 200000 x (None None SETITEM), STOP: once quadratic.
  std::string pkl = "\x80\x02}";
  for (int i = 0; i < 200000; ++i) pkl += "NNs";
  pkl += ".";
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(read_state_dict_pickle(reinterpret_cast<const uint8_t*>(pkl.data()), pkl.size()),
                    Catch::Contains("key is not a string"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}
