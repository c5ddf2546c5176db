// FUZZ_MAX_LEN 1048576
// FUZZ_DICTS format rwkv
// FUZZ_SEEDS rwkv
//
// Our own .rwkv format (docs/format.md) on arbitrary bytes: rwkv::read_rwkv_file and
// rwkv::rwkv_file_vocab. What they accept must keep the format's promises: every tensor
// and the vocabulary inside the input, at a 64-aligned offset after the header, no two
// sharing a byte, each tensor's size what its dtype and shape need (first and last byte
// read). Inputs that also load as a model are written back with rwkv::write_rwkv_file
// and read again: the same tensors byte for byte, and the file loads again.
#include <algorithm>
#include <vector>

#include "formats/rwkv_file.h"
#include "text/model_file.h"
#include "harness.h"
#include "model/model.h"
#include "base/dtype.h"

namespace {

constexpr size_t kRoundTripLimit = 256 << 10;  // larger inputs are checked, not reloaded

uint64_t need_bytes(const rwkv::TensorInfo& t) {
  if (rwkv::is_quantized(t.dtype)) {
    FUZZ_CHECK(t.shape.size() == 2 && t.shape[1] % rwkv::kQuantBlock == 0);
    return rwkv::matrix_bytes(t.dtype, uint64_t(t.shape[0]), uint64_t(t.shape[1]));
  }
  uint64_t n = rwkv::dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    FUZZ_CHECK(d >= 0);
    FUZZ_CHECK(!__builtin_mul_overflow(n, uint64_t(d), &n));
  }
  return n;
}

std::string concat(const rwkv::RwkvFileImage& img) {
  std::string out;
  for (const auto& p : img.parts) out.append(reinterpret_cast<const char*>(p.data), p.size);
  FUZZ_CHECK(out.size() == img.size);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    const auto tensors = rwkv::read_rwkv_file(data, size);
    const std::string_view vocab = rwkv::rwkv_file_vocab(data, size);  // the same header: cannot fail now
    FUZZ_CHECK(size >= rwkv::kRwkvFilePrefix);
    struct Range {
      uint64_t begin, end;
    };
    std::vector<Range> ranges;
    auto check_range = [&](const uint8_t* p, uint64_t n) {
      FUZZ_CHECK(fuzz_within(p, n, data, size));
      const uint64_t at = uint64_t(p - data);
      FUZZ_CHECK(at % rwkv::kRwkvFileAlign == 0);
      FUZZ_CHECK(at >= rwkv::kRwkvFilePrefix);
      if (n) {
        fuzz_touch(p, 1);
        fuzz_touch(p + n - 1, 1);
        ranges.push_back({at, at + n});
      }
    };
    for (const auto& t : tensors) {
      FUZZ_CHECK(t.shape.size() == t.stride.size());
      FUZZ_CHECK(t.contiguous());
      check_range(t.data, need_bytes(t));
    }
    if (!vocab.empty()) check_range(reinterpret_cast<const uint8_t*>(vocab.data()), vocab.size());
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < ranges.size(); ++i) FUZZ_CHECK(ranges[i - 1].end <= ranges[i].begin);

    if (size > kRoundTripLimit) return;
    rwkv::Bytes file = rwkv::Bytes::allocate(size);
    std::memcpy(file.data.get(), data, size);
    const auto model = rwkv::Model::load(std::move(file));
    FUZZ_CHECK(model->vocab().size() == vocab.size());
    // The embedded vocabulary goes along when it parses and fits the model.
    std::string out;
    try {
      out = concat(rwkv::write_model_file(*model, model->vocab(), {{"source", "fuzz"}}));
    } catch (const rwkv::Error&) {
      out = concat(rwkv::write_model_file(*model, {}, {{"source", "fuzz"}}));
    }
    rwkv::Bytes copy = rwkv::Bytes::allocate(out.size());
    std::memcpy(copy.data.get(), out.data(), out.size());
    std::unique_ptr<rwkv::Model> back;
    try {
      back = rwkv::Model::load(std::move(copy));
    } catch (const rwkv::Error& e) {
      std::fprintf(stderr, "a written model does not load again: %s\n", e.what());
      FUZZ_CHECK(false);
    }
    const auto &a = model->tensors(), &b = back->tensors();
    FUZZ_CHECK(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      FUZZ_CHECK(a[i].name == b[i].name && a[i].dtype == b[i].dtype && a[i].shape == b[i].shape);
      FUZZ_CHECK(a[i].bytes == b[i].bytes && std::memcmp(a[i].data, b[i].data, a[i].bytes) == 0);
    }
  });
}
