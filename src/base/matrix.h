#pragma once
// A weight matrix as the model holds it and the kernels read it: a row-major (rows,
// cols) view in F32, BF16, Q8_0 or Q4_0 (see dtype.h), in place in memory someone else
// owns. Quantized: `data` is the q part and `scale` the block scales of the blob dtype.h
// describes; null for the plain types.
#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace rwkv {

struct Matrix {
  DType dtype = DType::F32;
  int rows = 0, cols = 0;
  const void* data = nullptr;
  const float* scale = nullptr;  // (rows, cols / kQuantBlock), quantized types only
  const float* f32() const { return static_cast<const float*>(data); }
  const uint16_t* bf16() const { return static_cast<const uint16_t*>(data); }
  const uint8_t* q() const { return static_cast<const uint8_t*>(data); }
  // Bytes of weights read by one product with this matrix (q part and scales included).
  size_t bytes() const { return matrix_bytes(dtype, size_t(rows), size_t(cols)); }
  // Row r as float32 into out[cols].
  void row(int r, float* out) const {
    const size_t nb = size_t(cols) / kQuantBlock;
    type_traits(dtype).to_float(q() + matrix_value_bytes(dtype, size_t(r), size_t(cols)),
                                scale ? scale + size_t(r) * nb : nullptr, cols, out);
  }
};

}  // namespace rwkv
