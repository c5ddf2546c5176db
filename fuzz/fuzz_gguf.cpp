// FUZZ_MAX_LEN 1048576
// FUZZ_DICTS gguf rwkv
// FUZZ_SEEDS gguf
//
// The GGUF reader (formats/gguf.h) on arbitrary bytes: the header (one byte short of its
// end, it must ask for more), the metadata's vocabulary, the rwkv7 tensor map with every
// source decoded to float32, then read_checkpoint as Model::load calls it: each tensor's
// first and last element lie in the input or in the converted buffers, and are read.
#include "harness.h"
#include "base/dtype.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"

#include <vector>

namespace {

bool within_any(const uint8_t* p, uint64_t n, const uint8_t* data, size_t size, const std::vector<std::vector<uint8_t>>& owned) {
  if (fuzz_within(p, n, data, size)) return true;
  for (const auto& o : owned)
    if (fuzz_within(p, n, o.data(), o.size())) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    const auto h = rwkv::try_parse_gguf_header(data, size);
    if (!h) return;
    FUZZ_CHECK(h->data_start <= size && h->data_start % h->alignment == 0);
    FUZZ_CHECK(!rwkv::try_parse_gguf_header(data, size_t(h->data_start) - 1));
    fuzz_consume(rwkv::gguf_vocab_text(*h).size());

    for (const rwkv::GgufSource& s : rwkv::gguf_sources(*h, size)) {
      FUZZ_CHECK(s.offset <= size && s.bytes <= size - s.offset);
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      FUZZ_CHECK(uint64_t(n / rwkv::ggml_block_size(s.type)) * rwkv::ggml_block_bytes(s.type) == s.bytes);
      std::vector<float> values(static_cast<size_t>(n));
      rwkv::gguf_source_to_float(s, data + s.offset, values.data());
      if (n) fuzz_touch(&values[size_t(n - 1)], 4);
    }

    rwkv::CheckpointExtras extras;
    extras.large = rwkv::DType::Q8_0;
    for (const rwkv::TensorInfo& t : rwkv::read_checkpoint(data, size, extras)) {
      FUZZ_CHECK(t.shape.size() == t.stride.size());
      if (t.numel() == 0) continue;
      if (rwkv::is_quantized(t.dtype)) {
        FUZZ_CHECK(t.shape.size() == 2 && t.shape[1] % rwkv::kQuantBlock == 0);
        const uint64_t bytes = rwkv::matrix_bytes(t.dtype, uint64_t(t.shape[0]), uint64_t(t.shape[1]));
        FUZZ_CHECK(within_any(t.data, bytes, data, size, extras.owned));
        fuzz_touch(t.data + bytes - 1, 1);
        continue;
      }
      int64_t last = 0;
      for (size_t d = 0; d < t.shape.size(); ++d) last += (t.shape[d] - 1) * t.stride[d];
      const uint64_t elem = rwkv::dtype_size(t.dtype), extent = uint64_t(last + 1) * elem;
      FUZZ_CHECK(within_any(t.data, extent, data, size, extras.owned));
      fuzz_touch(t.data, elem);
      fuzz_touch(t.data + extent - elem, elem);
      fuzz_consume(uint32_t(rwkv::element_f32(t, last) != 0));
    }
  });
}
