#pragma once
// Named tensors as found in a checkpoint file: views into the file's bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace rwkv {

// F32, F16, BF16: one value per element. Q8_0, Q4_0: block-quantized weight matrices
// (only ever 2-D, see quant.h), which no checkpoint reader produces from .pth/.safetensors.
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0 };

// Bytes per element of the plain types (F32 4, F16 and BF16 2); 0 for the quantized ones.
inline size_t dtype_size(DType t) {
  return t == DType::F32 ? 4 : t == DType::F16 || t == DType::BF16 ? 2 : 0;
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
  }
  return "?";
}

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

std::string shape_string(const std::vector<int64_t>& shape);

// IEEE half to float, exactly (subnormals, infinities and NaN included).
float f16_to_f32(uint16_t h);
// The element at storage offset `offset` (in elements, from t.data) as float32.
float element_f32(const TensorInfo& t, int64_t offset);

// Reads the tensors of a checkpoint held in memory: a PyTorch `.pth` zip archive or a
// `.safetensors` file, told apart by their first bytes. The results point into `data`,
// which must outlive them. Throws rwkv::Error naming what is wrong.
std::vector<TensorInfo> read_checkpoint(const uint8_t* data, size_t size);

}  // namespace rwkv
