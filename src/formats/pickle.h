#pragma once
// The subset of Python's pickle format that torch.save uses for a state dict:
// an OrderedDict/dict of tensors rebuilt by torch._utils._rebuild_tensor_v2 from
// persistent-id storages. Anything else is refused with a clear message.
#include <cstdint>
#include <string>
#include <vector>

#include "formats/checkpoint.h"

namespace rwkv {

// One tensor of the pickled state dict, before its storage is located.
struct PickledTensor {
  std::string name;
  DType dtype;
  std::string storage_key;  // name of the blob under `<dir>/data/`
  int64_t storage_numel;    // elements in the whole storage
  int64_t offset;           // storage offset, in elements
  std::vector<int64_t> shape, stride;
};

// Interprets `data.pkl`. Throws rwkv::Error on anything malformed or unsupported.
std::vector<PickledTensor> read_state_dict_pickle(const uint8_t* data, size_t size);

}  // namespace rwkv
