// FUZZ_MAX_LEN 1048576
// FUZZ_DICTS pickle
// FUZZ_SEEDS pkl
//
// rwkv::read_state_dict_pickle (the data.pkl of a .pth) on arbitrary bytes.
#include "harness.h"
#include "formats/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    for (const rwkv::PickledTensor& t : rwkv::read_state_dict_pickle(data, size)) {
      FUZZ_CHECK(t.shape.size() == t.stride.size());
      FUZZ_CHECK(t.storage_numel >= 0);
      fuzz_consume(t.name.size() + t.storage_key.size() + uint64_t(t.offset));
      for (size_t d = 0; d < t.shape.size(); ++d) fuzz_consume(uint64_t(t.shape[d]) ^ uint64_t(t.stride[d]));
    }
  });
}
