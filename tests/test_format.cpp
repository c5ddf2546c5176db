// Our own .rwkv format (docs/format.md): a model written by write_model_file and loaded
// back gives the same logits bit for bit (as held: f32, bf16, Q8_0, Q4_0); damaged
// files give an rwkv::Error naming what is wrong.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "formats/rwkv_file.h"
#include "text/model_file.h"
#include "base/dtype.h"
#include "model/runner.h"
#include "test_support.h"

using namespace rwkv;
namespace fs = std::filesystem;

namespace {

// `n` bytes in a 64-byte-aligned malloc'd buffer, as the JS library's heap buffer may be.
Bytes aligned_bytes(const void* src, size_t n) {
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64 + 64));
  if (!p) throw Error("out of memory");
  if (n) std::memcpy(p, src, n);
  return Bytes::adopt(p, n);
}

std::unique_ptr<Model> load_string(const std::string& s, const LoadOptions& o = {}) {
  return Model::load(aligned_bytes(s.data(), s.size()), o);
}

// The image written out as one string (what the CLI streams to a file).
std::string file_bytes(const RwkvFileImage& img) {
  std::string out;
  out.reserve(img.size);
  for (const auto& p : img.parts) out.append(reinterpret_cast<const char*>(p.data), p.size);
  REQUIRE(out.size() == img.size);
  return out;
}

std::string convert(const Model& m, std::string_view vocab = {}, const RwkvMetadata& meta = {}) {
  return file_bytes(write_model_file(m, vocab, meta));
}

// Logits after every one of `tokens` (step by step) and of a parallel prefill.
std::vector<float> run(const Model& m, std::vector<int32_t> tokens) {
  for (auto& t : tokens) t %= m.config().V;
  Runner r(m);
  const size_t V = size_t(m.config().V);
  std::vector<float> out;
  State s(m.config());
  for (int32_t t : tokens) {
    auto l = r.step(s, t);
    out.insert(out.end(), l.begin(), l.end());
  }
  State p(m.config());
  std::vector<float> all(tokens.size() * V);
  r.prefill(p, tokens, all.data());
  out.insert(out.end(), all.begin(), all.end());
  out.insert(out.end(), s.data(), s.data() + s.size());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

void check_same_tensors(const Model& a, const Model& b) {
  const auto &ta = a.tensors(), &tb = b.tensors();
  REQUIRE(ta.size() == tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    INFO(ta[i].name);
    CHECK(ta[i].name == tb[i].name);
    CHECK(ta[i].dtype == tb[i].dtype);
    CHECK(ta[i].shape == tb[i].shape);
    REQUIRE(ta[i].bytes == tb[i].bytes);
    CHECK(std::memcmp(ta[i].data, tb[i].data, ta[i].bytes) == 0);
  }
}

// A .rwkv file with the given JSON header, the JSON at byte 16 and zeros up to `size`.
std::string handmade(const std::string& json, size_t size, uint32_t version = 1) {
  std::string f(kRwkvFileMagic, 8);
  for (uint32_t v : {version, uint32_t(json.size())})
    for (int i = 0; i < 4; ++i) f += char((v >> (8 * i)) & 0xFF);
  f += json;
  if (f.size() < size) f.resize(size, '\0');
  return f;
}

std::vector<TensorInfo> read(const std::string& f) {
  return read_checkpoint(reinterpret_cast<const uint8_t*>(f.data()), f.size());
}

}  // namespace

TEST_CASE("a converted fixture gives the same logits bit for bit, in every type", "[format][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  const auto st = read_file(fixture("fix-L3-C64-H2.f32.safetensors"));
  const auto f16 = read_file(fixture("fix-L2-C64-H1.fp16.pth"));
  if (!pth || !st || !f16) {
    WARN("skipped: fixtures missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const std::vector<int32_t> tokens{1, 2, 3, 0, 5, 299, 42, 7, 7, 100};
  struct Case {
    const char* name;
    const std::string* file;
    std::optional<DType> as;
    DType held;
  };
  const Case cases[] = {
      {"bf16 kept", &*pth, std::nullopt, DType::BF16},
      {"f32 kept", &*st, std::nullopt, DType::F32},
      {"f16 (held as f32)", &*f16, std::nullopt, DType::F32},
      {"bf16 -> f32", &*pth, DType::F32, DType::F32},
      {"f32 -> bf16", &*st, DType::BF16, DType::BF16},
      {"bf16 -> Q8_0", &*pth, DType::Q8_0, DType::Q8_0},
      {"f32 -> Q4_0", &*st, DType::Q4_0, DType::Q4_0},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      const LoadOptions opt{c.as};
      auto src = load_string(*c.file, opt);
      CHECK(src->weight_dtype() == c.held);
      const std::string out = convert(*src, {}, {{"source", "fixture"}});
      // Every tensor at a 64-aligned offset; the file no larger than what it holds needs.
      size_t held = 0;
      for (const auto& t : src->tensors()) held += t.bytes;
      CHECK(out.size() < held + 64 * (src->tensors().size() + 1) + 16384);

      auto back = load_string(out);
      CHECK(back->weight_dtype() == c.held);
      CHECK(back->vocab().empty());
      check_same_tensors(*src, *back);
      CHECK(same_bits(run(*src, tokens), run(*back, tokens)));
      // Used in place: the reloaded model holds little more than the file.
      CHECK(back->memory_bytes() < out.size() + size_t(64) * 4 * 19 * 3 + 65536);

      // Converted once more (now from a .rwkv file), the bytes are the same.
      CHECK(convert(*back, {}, {{"source", "fixture"}}) == out);
      // And a converted file loads with conversion like any other format.
      if (!c.as) {
        auto q = load_string(out, LoadOptions{DType::Q8_0});
        auto q_src = load_string(*c.file, LoadOptions{DType::Q8_0});
        check_same_tensors(*q_src, *q);
      }
    }
  }
}

TEST_CASE("files of the independent JS writer (make-fixtures.mjs) load like their .pth twins", "[format][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  const auto rw = read_file(fixture("fix-L3-C64-H2.rwkv"));
  const auto f16 = read_file(fixture("fix-L2-C64-H1.fp16.pth"));
  const auto rw16 = read_file(fixture("fix-L2-C64-H1.fp16.rwkv"));
  const auto vocab = read_file(fixture("fix-vocab-300.txt"));
  if (!pth || !rw || !f16 || !rw16 || !vocab) {
    WARN("skipped: fixtures missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const std::vector<int32_t> tokens{5, 6, 7, 0, 299, 1};
  auto a = load_string(*pth), b = load_string(*rw);
  CHECK(b->weight_dtype() == DType::BF16);
  CHECK(b->vocab() == *vocab);
  CHECK(same_bits(run(*a, tokens), run(*b, tokens)));
  // F16 in the file (shuffled order): widened to f32 like the f16 .pth.
  auto c = load_string(*f16), d = load_string(*rw16);
  CHECK(d->weight_dtype() == DType::F32);
  CHECK(d->vocab().empty());
  CHECK(same_bits(run(*c, tokens), run(*d, tokens)));
  // The C++ writer's file of the same model holds the same tensors.
  check_same_tensors(*load_string(convert(*a, *vocab)), *b);
}

TEST_CASE("a converted reference model keeps the official golden logits", "[format][shared]") {
  const std::string dir = std::string(reference_dir());
  const auto model = read_file(dir + "/models/rand-L2-D128-V1000.pth");
  const auto json = read_file(dir + "/golden/rand-L2-D128-V1000.seq48.json");
  const auto want = read_f32(dir + "/golden/rand-L2-D128-V1000.seq48.logits.f32");
  if (!model || !json || want.empty()) {
    WARN("skipped: " << dir << " (the shared reference data) is missing");
    return;
  }
  std::vector<int32_t> tokens;
  const size_t t = json->find('[', json->find("\"tokens\"")), end = json->find(']', t);
  for (size_t p = t + 1; p < end;) {
    char* e;
    const long v = std::strtol(json->c_str() + p, &e, 10);
    if (e == json->c_str() + p) {
      ++p;
      continue;
    }
    tokens.push_back(int32_t(v));
    p = size_t(e - json->c_str());
  }
  auto src = load_string(*model);
  auto back = load_string(convert(*src));
  const size_t V = size_t(back->config().V);
  REQUIRE(want.size() == tokens.size() * V);
  const auto got = run(*back, tokens);
  CHECK(same_bits(run(*src, tokens), got));
  float d = 0;
  for (size_t i = 0; i < want.size(); ++i) d = std::max(d, std::fabs(got[i] - want[i]));
  CHECK(d <= 5e-4f);
}

TEST_CASE("a vocabulary and metadata travel in the file", "[format][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  const auto vocab = read_file(fixture("fix-vocab-300.txt"));
  if (!pth || !vocab) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  auto src = load_string(*pth);
  const std::string out = convert(*src, *vocab, parse_metadata_json(R"({"source": "fix \"L3\".pth", "converter": "test\n"})"));
  const auto* data = reinterpret_cast<const uint8_t*>(out.data());
  CHECK(rwkv_file_vocab(data, out.size()) == *vocab);
  CHECK(rwkv_file_vocab(reinterpret_cast<const uint8_t*>(pth->data()), pth->size()).empty());
  CHECK(out.find(R"("metadata":{"source":"fix \"L3\".pth","converter":"test\n"})") != std::string::npos);
  auto back = load_string(out);
  CHECK(back->vocab() == *vocab);
  // The vocabulary is kept when the file is converted again.
  CHECK(convert(*back, back->vocab()) == convert(*src, *vocab));

  // A vocabulary that does not parse, or has more tokens than the model, is refused.
  CHECK_THROWS_WITH(convert(*src, "not a vocabulary"), Catch::Contains("vocab") || Catch::Contains("line 1"));
  std::string big;
  for (int i = 1; i <= 400; ++i) big += std::to_string(i) + " 'x" + std::to_string(i) + "' " + std::to_string(1 + std::to_string(i).size()) + "\n";
  CHECK_THROWS_WITH(convert(*src, big), Catch::Contains("tokens but the model only 300"));
  CHECK_THROWS_WITH(parse_metadata_json(R"({"a": 1})"), Catch::Contains("\"a\" is not a string"));
  CHECK_THROWS_WITH(parse_metadata_json(R"({"a": "x", "a": "y"})"), Catch::Contains("appears twice"));
  CHECK_THROWS_WITH(parse_metadata_json("[]"), Catch::Contains("JSON object"));
  CHECK(parse_metadata_json("").empty());
}

TEST_CASE("damaged .rwkv files are refused with a clear message", "[format][errors]") {
  // One valid tensor table; each case changes one thing.
  const std::string emb = R"("emb.weight":{"dtype":"F32","shape":[2,4],"offset":1024,"bytes":32})";
  const std::string config = R"("config":{"n_layer":0,"n_embd":4,"vocab_size":2})";
  auto header = [&](const std::string& tensors, const std::string& extra = "") {
    return R"({"architecture":"x070",)" + config + R"(,"tensors":{)" + tensors + "}" + extra + "}";
  };
  REQUIRE(read(handmade(header(emb), 1056)).size() == 1);
  const auto t = read(handmade(header(emb + R"(,"q":{"dtype":"Q4_0","shape":[2,64],"offset":1088,"bytes":80})"), 1168));
  REQUIRE(t.size() == 2);
  CHECK(t[1].dtype == DType::Q4_0);
  CHECK(t[1].stride == std::vector<int64_t>{64, 1});

  struct Bad {
    const char* what;
    std::string file;
    const char* message;
  };
  std::string bad_magic = handmade(header(emb), 1056);
  bad_magic[4] = 'X';
  const Bad cases[] = {
      {"bad magic", bad_magic, "unrecognised model file"},
      {"version 99", handmade(header(emb), 1056, 99), "format version 99 is not supported"},
      {"only the magic", std::string(kRwkvFileMagic, 8) + "\x01", "truncated"},
      {"header longer than the file", handmade(header(emb), 1056).substr(0, 40), "longer than the file"},
      {"tensor cut short", handmade(header(emb), 1050), "past the end of the 1050-byte file"},
      {"overlapping tensors",
       handmade(header(emb + R"(,"b":{"dtype":"BF16","shape":[4],"offset":1024,"bytes":8})"), 1056),
       "overlaps"},
      {"misaligned", handmade(header(R"("emb.weight":{"dtype":"F32","shape":[2,4],"offset":1028,"bytes":32})"), 1088),
       "offset 1028 is not a multiple of 64"},
      {"inside the header", handmade(header(R"("emb.weight":{"dtype":"F32","shape":[2,4],"offset":64,"bytes":32})"), 1088),
       "lies inside the header"},
      {"bad dtype", handmade(header(R"("emb.weight":{"dtype":"I8","shape":[2,4],"offset":1024,"bytes":8})"), 1056),
       "dtype 'I8' is unknown"},
      {"size mismatch", handmade(header(R"("emb.weight":{"dtype":"F32","shape":[2,4],"offset":1024,"bytes":36})"), 1088),
       "needs 32 bytes but its entry says 36"},
      {"quantized, odd columns", handmade(header(emb + R"(,"q":{"dtype":"Q8_0","shape":[2,33],"offset":1088,"bytes":74})"), 1200),
       "divisible by 32"},
      {"quantized, 1-D", handmade(header(emb + R"(,"q":{"dtype":"Q8_0","shape":[64],"offset":1088,"bytes":72})"), 1200),
       "needs a 2-D shape"},
      {"duplicated name", handmade(header(emb + "," + emb), 1056), "appears twice"},
      {"negative offset", handmade(header(R"("emb.weight":{"dtype":"F32","shape":[2,4],"offset":-64,"bytes":32})"), 1056),
       "negative"},
      {"vocabulary out of range",
       handmade(header(emb, R"(,"vocabulary":{"format":"rwkv-vocab-txt","offset":1088,"bytes":100})"), 1100),
       "vocabulary: bytes [1088, 1188) lie past the end"},
      {"vocabulary of another format",
       handmade(header(emb, R"(,"vocabulary":{"format":"tiktoken","offset":1088,"bytes":4})"), 1100), "'tiktoken' is unknown"},
      {"vocabulary over a tensor",
       handmade(header(emb, R"(,"vocabulary":{"format":"rwkv-vocab-txt","offset":1024,"bytes":4})"), 1100), "overlaps"},
      {"another architecture", handmade(R"({"architecture":"x060",)" + config + R"(,"tensors":{}})", 1024), "'x060' is not supported"},
      {"no tensor table", handmade(R"({"architecture":"x070",)" + config + "}", 1024), "no \"tensors\" object"},
      {"config disagrees", handmade(R"({"architecture":"x070","config":{"n_layer":0,"n_embd":4,"vocab_size":3},"tensors":{)" + emb + "}}", 1056),
       "vocab_size 3"},
      {"config without n_layer", handmade(R"({"architecture":"x070","config":{"n_embd":4,"vocab_size":2},"tensors":{)" + emb + "}}", 1056),
       "n_layer"},
      {"bad JSON", handmade(R"({"architecture":"x070",)", 1024), "rwkv file header: invalid JSON"},
      {"not an object", handmade("[1,2]", 1024), "not a JSON object"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK_THROWS_WITH(read(c.file), Catch::Contains(c.message));
    CHECK_THROWS_AS(load_string(c.file), Error);
  }
  // The vocabulary reader checks the same header.
  const std::string v = handmade(header(emb, R"(,"vocabulary":{"format":"rwkv-vocab-txt","offset":1088,"bytes":100})"), 1100);
  CHECK_THROWS_WITH(rwkv_file_vocab(reinterpret_cast<const uint8_t*>(v.data()), v.size()), Catch::Contains("past the end"));
  CHECK_THROWS_WITH(read_rwkv_file(reinterpret_cast<const uint8_t*>(bad_magic.data()), bad_magic.size()), Catch::Contains("magic"));
}

TEST_CASE("a converted file cut short anywhere or with damaged bytes gives errors, not crashes", "[format][errors][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  const auto vocab = read_file(fixture("fix-vocab-300.txt"));
  if (!pth || !vocab) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  auto src = load_string(*pth, LoadOptions{DType::Q4_0});
  const std::string f = convert(*src, *vocab);
  for (size_t n : {size_t(0), size_t(7), size_t(8), size_t(15), size_t(16), size_t(100), f.size() / 3, f.size() / 2,
                   f.size() - 100, f.size() - 1}) {
    INFO("cut to " << n << " of " << f.size() << " bytes");
    CHECK_THROWS_AS(load_string(f.substr(0, n)), Error);
  }
  CHECK_THROWS_WITH(load_string(f.substr(0, f.size() - 1)), Catch::Contains("truncated"));
  std::mt19937 rng(7);
  const uint32_t header_len = uint32_t(uint8_t(f[12])) | uint32_t(uint8_t(f[13])) << 8 | uint32_t(uint8_t(f[14])) << 16;
  for (int trial = 0; trial < 500; ++trial) {
    std::string g = f;
    g[rng() % (16 + header_len)] = char(rng());
    try {
      auto m = load_string(g);  // a harmless change (a digit of metadata) may still load
      CHECK(m->config().n_layer == 3);
    } catch (const Error&) {
    }
  }
}
