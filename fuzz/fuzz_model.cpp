// FUZZ_MAX_LEN 1048576
// FUZZ_DICTS rwkv safetensors pickle zip format
// FUZZ_SEEDS pth safetensors rwkv
//
// rwkv::Model::load end to end on arbitrary bytes; when a model loads (and is small
// enough to run quickly), rwkv::Runner evaluates it on a fresh State: a prefill of two
// tokens (the matmul path) and a step (the matvec path). Token ids come from the last
// bytes of the input, reduced into the vocabulary.
#include <span>

#include "harness.h"
#include "model/model.h"
#include "model/runner.h"

namespace {
constexpr size_t kRunLimitBytes = size_t(16) << 20;  // larger models are loaded, not run
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    rwkv::Bytes file = rwkv::Bytes::allocate(size);
    if (size) std::memcpy(file.data.get(), data, size);
    const auto model = rwkv::Model::load(std::move(file));
    const rwkv::Config& c = model->config();
    FUZZ_CHECK(c.n_layer > 0 && c.C > 0 && c.H > 0 && c.N > 0 && c.F > 0 && c.V > 0);
    FUZZ_CHECK(int64_t(c.H) * c.N == c.C);
    FUZZ_CHECK(model->weights().layers.size() == size_t(c.n_layer));
    if (c.state_size() * sizeof(float) > kRunLimitBytes || model->memory_bytes() > kRunLimitBytes) return;

    int32_t tokens[2] = {0, 0};
    if (size >= 4) {
      tokens[0] = int32_t((uint32_t(data[size - 4]) | uint32_t(data[size - 3]) << 8) % uint32_t(c.V));
      tokens[1] = int32_t((uint32_t(data[size - 2]) | uint32_t(data[size - 1]) << 8) % uint32_t(c.V));
    }
    rwkv::State state(c);
    rwkv::Runner runner(*model, 2);
    std::span<const float> logits = runner.prefill(state, std::span<const int32_t>(tokens, 2));
    FUZZ_CHECK(logits.size() == size_t(c.V));
    fuzz_touch(logits.data(), sizeof(float));
    fuzz_touch(logits.data() + (c.V - 1), sizeof(float));
    state.reset();
    logits = runner.step(state, tokens[1]);
    FUZZ_CHECK(logits.size() == size_t(c.V));
    fuzz_touch(logits.data() + (c.V - 1), sizeof(float));
    fuzz_touch(state.data() + (state.size() - 1), sizeof(float));
  });
}
