// Checkpoint readers: both formats give the same tensors, and damaged or wrong files
// give an rwkv::Error that says what is wrong, never a crash.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>

#include "formats/pickle.h"
#include "model/loader.h"
#include "text/model_file.h"
#include "model/runner.h"
#include "test_support.h"
#include "../tools/load_model.h"

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

// ---------------------------------------------------------------- the streaming loader

namespace {

// Feeds `file` to a StreamLoader in chunks of the sizes `chunk(i)` gives, starting it
// with `options` as soon as its plan is there.
std::unique_ptr<Model> stream_load(const std::string& file, const LoadOptions& options,
                                   const std::function<size_t(size_t)>& chunk, size_t* peak = nullptr) {
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
  auto m = L.finish();
  if (peak) *peak = L.peak_bytes();
  return m;
}

std::unique_ptr<Model> stream_load(const std::string& file, const LoadOptions& options, size_t chunk, size_t* peak = nullptr) {
  return stream_load(file, options, std::function<size_t(size_t)>([=](size_t) { return chunk; }), peak);
}

// The same tensors, byte for byte, the same vocabulary and dimensions.
void check_same(const Model& a, const Model& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const HeldTensor &x = a.tensors()[i], &y = b.tensors()[i];
    INFO("tensor " << x.name);
    REQUIRE(x.name == y.name);
    REQUIRE(x.dtype == y.dtype);
    REQUIRE(x.shape == y.shape);
    REQUIRE(x.bytes == y.bytes);
    REQUIRE(std::memcmp(x.data, y.data, x.bytes) == 0);
  }
  CHECK(a.vocab() == b.vocab());
  CHECK(a.config().entries() == b.config().entries());
}

std::vector<std::pair<std::string, std::string>> stream_files() {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string models = std::string(reference_dir()) + "/models/";
  for (const auto& p : {fixture("fix-L3-C64-H2.pth"), fixture("fix-L3-C64-H2.f32.safetensors"), fixture("fix-L2-C64-H1.fp16.pth"),
                        fixture("fix-L3-C64-H2.rwkv"), fixture("fix-L2-C64-H1.fp16.rwkv"), models + "rand-L2-D128-V1000.pth",
                        models + "rand-L2-D128-V1000.safetensors", models + "tiny-rwkv-7v0-834K.bf16.pth",
                        models + "tiny-rwkv-7v0-834K.fp32.safetensors"})
    if (auto s = read_file(p)) out.emplace_back(p, *s);
  return out;
}

const std::optional<DType> kPrecisions[] = {std::nullopt, DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0};

}  // namespace

TEST_CASE("streaming loads equal loading the whole file, for every container, precision and chunk size", "[loader][stream]") {
  const auto files = stream_files();
  if (files.size() < 9) WARN("some model files are missing (run: node scripts/make-fixtures.mjs; ../shared/reference/models)");
  for (const auto& [path, file] : files) {
    for (const auto& q : kPrecisions) {
      INFO(path << " as " << (q ? dtype_name(*q) : "stored"));
      LoadOptions o;
      o.matrices = q;
      const auto whole = Model::load(copy_bytes(file, file.size()), o);
      // One chunk, odd fixed sizes, and sizes drawn at random between 1 byte and 64 KB.
      for (size_t chunk : {file.size(), size_t(65536), size_t(4099), size_t(64), size_t(7)}) {
        INFO("chunks of " << chunk);
        check_same(*whole, *stream_load(file, o, chunk));
      }
      std::mt19937 rng(uint32_t(file.size()));
      check_same(*whole, *stream_load(file, o, std::function<size_t(size_t)>([&](size_t) { return size_t(1) + rng() % (rng() % 2 ? 16 : 65536); })));
    }
  }
}

TEST_CASE("a stream of 1-byte chunks loads every container", "[loader][stream]") {
  for (const auto& [path, file] : stream_files()) {
    if (file.size() > 1000000) continue;
    INFO(path);
    LoadOptions o;
    o.matrices = DType::Q8_0;
    check_same(*Model::load(copy_bytes(file, file.size()), o), *stream_load(file, o, size_t(1)));
  }
}

TEST_CASE("the streamed fixture gives the golden logits", "[loader][stream][fixtures]") {
  const auto pth = read_file(fixture("fix-L3-C64-H2.pth"));
  if (!pth) {
    WARN("skipped: fixtures missing in " << fixture_dir());
    return;
  }
  CHECK(fingerprint(*stream_load(*pth, {}, size_t(333))) == fingerprint(*load_string(*pth)));
}

TEST_CASE("the plan gives each precision's bytes before any tensor data", "[loader][stream]") {
  for (const auto& [path, file] : stream_files()) {
    INFO(path);
    StreamLoader L;
    size_t at = 0;
    while (!L.planned()) {
      auto w = L.window();
      const size_t k = std::min<size_t>(1000, file.size() - at);
      std::memcpy(w.data(), file.data() + at, k);
      L.commit(k);
      at += k;
    }
    CHECK(L.held_bytes() < 2 * StreamLoader::kInputBytes);  // nothing of the model's size yet
    for (const auto& q : kPrecisions) {
      LoadOptions o;
      o.matrices = q;
      if (L.plan().bytes(q) == 0) continue;  // a precision this file cannot be held in
      CHECK(L.plan().bytes(q) == stream_load(file, o, size_t(1) << 16)->memory_bytes());
    }
    CHECK(L.plan().q4_0 < L.plan().q8_0);
    CHECK(L.plan().q8_0 < L.plan().f32);
  }
}

TEST_CASE("the loader's peak is the model plus its buffers, not the file", "[loader][stream]") {
  const auto file = read_file(std::string(reference_dir()) + "/models/rand-L2-D128-V65536.pth");
  if (!file) {
    WARN("skipped: rand-L2-D128-V65536.pth missing");
    return;
  }
  for (const auto& q : kPrecisions) {
    LoadOptions o;
    o.matrices = q;
    size_t peak = 0;
    const auto m = stream_load(*file, o, size_t(1) << 20, &peak);
    INFO((q ? dtype_name(*q) : "stored") << ": model " << m->memory_bytes() << " bytes, peak " << peak << ", file " << file->size());
    // The input buffer, a row, and the metadata: a few MB over the model at most.
    CHECK(peak <= m->memory_bytes() + StreamLoader::kInputBytes + (size_t(1) << 20));
    if (q == DType::Q4_0) CHECK(peak < file->size() / 2);
  }
}

TEST_CASE("the benchmark programs' file loader streams a file into the same model as Model::load", "[loader][stream][tools]") {
  const std::string path = std::string(reference_dir()) + "/models/rand-L2-D128-V65536.pth";
  const auto file = read_file(path);
  if (!file) {
    WARN("skipped: rand-L2-D128-V65536.pth missing");
    return;
  }
  for (const auto& q : kPrecisions) {
    INFO((q ? dtype_name(*q) : "stored"));
    LoadOptions o;
    o.matrices = q;
    const auto whole = Model::load(copy_bytes(*file, file->size()), o);
    // Reads of an odd size that end mid-tensor, without a limit; then whole input windows
    // with a limit of exactly the model's size.
    uint64_t need = 0;
    for (size_t chunk : {size_t(40961), StreamLoader::kInputBytes}) {
      INFO("reads of " << chunk);
      const tools::LoadedFile got = tools::load_model_file(path, o, need, chunk);
      check_same(*whole, *got.model);
      need = got.model->memory_bytes();
      CHECK(got.file_bytes == file->size());
      CHECK(got.peak_bytes >= need);
      CHECK(got.peak_bytes <= need + StreamLoader::kInputBytes + (size_t(1) << 20));
    }
    // A limit below the model's size: an error naming the size, before the model is allocated.
    REQUIRE_THROWS_WITH(tools::load_model_file(path, o, need - 1),
                        Catch::Contains(std::to_string(need >> 20) + " MB as " + (q ? dtype_name(*q) : "stored")) &&
                            Catch::Contains("choose a smaller quant"));
  }
  REQUIRE_THROWS_WITH(tools::load_model_file(path + ".missing", {}), Catch::Contains("cannot open"));
  const std::string cut = (fs::temp_directory_path() / "rwkv-load-model-cut.pth").string();
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(cut.c_str(), "wb"), &std::fclose);
    REQUIRE(f);
    std::fwrite(file->data(), 1, file->size() / 2, f.get());
  }
  CHECK_THROWS_AS(tools::load_model_file(cut, {}), Error);
  std::remove(cut.c_str());
}

TEST_CASE("a stream cut anywhere or damaged late fails cleanly", "[loader][stream][errors]") {
  for (const auto& [path, file] : stream_files()) {
    INFO(path);
    std::mt19937 rng(7);
    for (int trial = 0; trial < 40; ++trial) {
      const size_t cut = trial < 20 ? rng() % file.size() : file.size() - 1 - rng() % std::min<size_t>(file.size(), 600);
      INFO("cut at " << cut);
      CHECK_THROWS_WITH(stream_load(file.substr(0, cut), {}, size_t(4096)), Catch::Contains("ended after") || Catch::Contains("zip") ||
                                                                                  Catch::Contains("rwkv file") || Catch::Contains("lacks"));
    }
  }
}

TEST_CASE("the converter writes the same .rwkv file as converting a loaded model", "[loader][stream][convert]") {
  for (const auto& [path, file] : stream_files()) {
    for (const auto& q : kPrecisions) {
      INFO(path << " as " << (q ? dtype_name(*q) : "stored"));
      LoadOptions o;
      o.matrices = q;
      const auto m = Model::load(copy_bytes(file, file.size()), o);
      const RwkvFileImage img = write_model_file(*m, m->vocab(), {{"source", "x"}});
      std::string expect;
      for (const auto& p : img.parts) expect.append(reinterpret_cast<const char*>(p.data), p.size);

      StreamLoader L(StreamLoader::Output::File);
      std::string out;
      auto drain = [&] {
        while (auto part = L.ready()) {
          if (out.size() < part->offset + part->size) out.resize(part->offset + part->size, '\0');
          std::memcpy(out.data() + part->offset, part->data, part->size);
          L.pop();
        }
      };
      size_t peak_parts = 0;
      for (size_t at = 0; at < file.size();) {
        if (L.planned() && !L.started()) {
          L.start(o, {}, {{"source", "x"}});
          out.assign(L.file_header());
        }
        auto w = L.window();
        const size_t k = std::min<size_t>(777, file.size() - at);
        std::memcpy(w.data(), file.data() + at, k);
        L.commit(k);
        at += k;
        peak_parts = std::max(peak_parts, L.held_bytes());
        drain();
      }
      L.finish();
      out.resize(L.file_size(), '\0');
      CHECK(out.size() == expect.size());
      CHECK(out == expect);
    }
  }
}
