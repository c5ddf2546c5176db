// FUZZ_MAX_LEN 1048576
// FUZZ_DICTS rwkv safetensors pickle zip format
// FUZZ_SEEDS pth safetensors rwkv
//
// The streaming loader (model/loader.h) on arbitrary bytes fed in chunks of random sizes
// (drawn from the first input byte's PRNG), with a precision also drawn from it: when a
// stream loads, the whole-file loader must load the same bytes to the same tensors, bit
// for bit, and the converter (Output::File) must write a file whose tensors are those.
#include <random>

#include "harness.h"
#include "model/loader.h"
#include "model/model.h"

namespace {

template <typename OnPlan>
void feed(rwkv::StreamLoader& L, const uint8_t* data, size_t size, std::mt19937& rng, OnPlan on_plan) {
  for (size_t at = 0; at < size;) {
    if (L.planned() && !L.started()) on_plan();
    const std::span<uint8_t> w = L.window();
    FUZZ_CHECK(!w.empty());
    const size_t want = rng() % 4 == 0 ? 1 + rng() % 7 : 1 + rng() % 4096;
    const size_t k = std::min({want, size - at, w.size()});
    std::memcpy(w.data(), data + at, k);
    L.commit(k);
    at += k;
  }
  if (L.planned() && !L.started()) on_plan();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::mt19937 rng(data[0]);
  const std::optional<rwkv::DType> choices[] = {std::nullopt, rwkv::DType::F32, rwkv::DType::BF16, rwkv::DType::Q8_0,
                                                rwkv::DType::Q4_0};
  rwkv::LoadOptions options;
  options.matrices = choices[data[0] % 5];
  ++data, --size;
  return fuzz_run([&] {
    rwkv::StreamLoader L;
    feed(L, data, size, rng, [&] { L.start(options); });
    const auto streamed = L.finish();
    FUZZ_CHECK(L.peak_bytes() <= streamed->memory_bytes() + rwkv::StreamLoader::kInputBytes + size + (size_t(1) << 20));

    rwkv::Bytes file = rwkv::Bytes::allocate(size);
    if (size) std::memcpy(file.data.get(), data, size);
    const auto whole = rwkv::Model::load(std::move(file), options);
    FUZZ_CHECK(whole->tensors().size() == streamed->tensors().size());
    for (size_t i = 0; i < whole->tensors().size(); ++i) {
      const auto &a = whole->tensors()[i], &b = streamed->tensors()[i];
      FUZZ_CHECK(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes);
      FUZZ_CHECK(std::memcmp(a.data, b.data, a.bytes) == 0);
    }

    rwkv::StreamLoader C(rwkv::StreamLoader::Output::File);
    std::vector<uint8_t> out;
    feed(C, data, size, rng, [&] {
      C.start(options);
      out.assign(C.file_header().begin(), C.file_header().end());
      out.resize(C.file_size());
    });
    while (auto part = C.ready()) {
      FUZZ_CHECK(part->offset + part->size <= out.size());
      std::memcpy(out.data() + part->offset, part->data, part->size);
      C.pop();
    }
    C.finish();
    rwkv::Bytes image = rwkv::Bytes::allocate(out.size());
    std::memcpy(image.data.get(), out.data(), out.size());
    const auto again = rwkv::Model::load(std::move(image));
    FUZZ_CHECK(again->tensors().size() == streamed->tensors().size());
    for (size_t i = 0; i < again->tensors().size(); ++i)
      FUZZ_CHECK(std::memcmp(again->tensors()[i].data, streamed->tensors()[i].data, streamed->tensors()[i].bytes) == 0);
  });
}
