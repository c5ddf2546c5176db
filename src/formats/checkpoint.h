#pragma once
// Named tensors as found in a checkpoint file: views into the file's bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"

namespace rwkv {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;   // outermost first
  std::vector<int64_t> stride;  // in elements, same length as shape
  const uint8_t* data;          // element [0,...,0] (storage base + storage offset)
  // Every element index (sum of index*stride) lies in [0, extent): checked by the readers
  // against the storage size, so any view within the shape and strides is safe to read.
  bool contiguous() const;
  int64_t numel() const;
};

// One contiguous tensor in memory, under its checkpoint key, with its size in bytes: what
// a writer takes (a quantized matrix is its blob, q part then scales, see dtype.h).
struct HeldTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  size_t bytes;
};

// Refuses a view (element offset, shape, stride) of a storage of `numel` elements that
// could address an element outside the storage (overflow included), naming tensor `name`.
void check_view(const std::string& name, int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                const std::vector<int64_t>& stride);

// One tensor of a safetensors header: bytes [begin, end) of the data after the header.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};
// Reads a safetensors JSON header (the tensors in its order, "__metadata__" left out)
// and checks every entry against `data_size`, the bytes that follow the header.
std::vector<SafetensorsEntry> parse_safetensors_header(std::string_view json, uint64_t data_size);

std::string shape_string(const std::vector<int64_t>& shape);

// The element at storage offset `offset` (in elements, from t.data) as float32.
float element_f32(const TensorInfo& t, int64_t offset);

// Reads the tensors of a checkpoint held in memory: a PyTorch `.pth` zip archive or a
// `.safetensors` file, told apart by their first bytes. The results point into `data`,
// which must outlive them. Throws rwkv::Error naming what is wrong.
// A GGUF file is refused here: its tensors are not all views (the overload below).
std::vector<TensorInfo> read_checkpoint(const uint8_t* data, size_t size);

// What a model file holds that cannot be a view of its bytes: the tensors converted while
// reading (GGUF's block types, formats/gguf.h) and a vocabulary from its metadata.
struct CheckpointExtras {
  DType large = DType::BF16;                // what converted large matrices become
  std::vector<std::vector<uint8_t>> owned;  // the converted tensors' bytes
  std::string vocab;                        // vocabulary-file text (GGUF), else empty
};
// As above, for every container a model comes in: GGUF files too.
std::vector<TensorInfo> read_checkpoint(const uint8_t* data, size_t size, CheckpointExtras& extras);

}  // namespace rwkv
