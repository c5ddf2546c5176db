// FUZZ_MAX_LEN 4194304
// FUZZ_DICTS safetensors pickle zip rwkv format
// FUZZ_SEEDS pth safetensors rwkv
//
// rwkv::read_checkpoint (.pth zip + pickle, .safetensors header + JSON, or our .rwkv
// format) on arbitrary bytes. For every tensor, the first and the last element its shape
// and strides can address must lie inside the input, and both are read (ASan checks the
// bytes); a quantized one (Q8_0, Q4_0: .rwkv only) is a 2-D blob of matrix_bytes().
#include "harness.h"
#include "base/dtype.h"
#include "formats/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    for (const rwkv::TensorInfo& t : rwkv::read_checkpoint(data, size)) {
      FUZZ_CHECK(t.shape.size() == t.stride.size());
      fuzz_consume(t.name.size());
      bool empty = false;
      for (int64_t n : t.shape) {
        FUZZ_CHECK(n >= 0);
        empty |= n == 0;
      }
      if (empty) continue;  // addresses nothing
      if (rwkv::is_quantized(t.dtype)) {
        FUZZ_CHECK(t.shape.size() == 2 && t.shape[1] % rwkv::kQuantBlock == 0 && t.contiguous());
        const uint64_t n = rwkv::matrix_bytes(t.dtype, uint64_t(t.shape[0]), uint64_t(t.shape[1]));
        FUZZ_CHECK(fuzz_within(t.data, n, data, size));
        fuzz_touch(t.data, 1);
        fuzz_touch(t.data + n - 1, 1);
        continue;
      }
      // The furthest element: sum((shape[d] - 1) * stride[d]), computed without overflow.
      int64_t last = 0;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        FUZZ_CHECK(t.stride[d] >= 0);
        int64_t span;
        FUZZ_CHECK(!__builtin_mul_overflow(t.shape[d] - 1, t.stride[d], &span));
        FUZZ_CHECK(!__builtin_add_overflow(last, span, &last));
      }
      const uint64_t elem = rwkv::dtype_size(t.dtype);
      uint64_t extent;
      FUZZ_CHECK(!__builtin_mul_overflow(uint64_t(last) + 1, elem, &extent));
      FUZZ_CHECK(fuzz_within(t.data, extent, data, size));
      fuzz_touch(t.data, elem);
      fuzz_touch(t.data + (extent - elem), elem);
      const float first = rwkv::element_f32(t, 0), lastv = rwkv::element_f32(t, last);
      uint32_t bits[2];
      std::memcpy(&bits[0], &first, 4);
      std::memcpy(&bits[1], &lastv, 4);
      fuzz_consume(bits[0] ^ bits[1]);
    }
  });
}
