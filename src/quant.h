#pragma once
// Block quantization of weight matrices (Q8_0, Q4_0). A row of `cols` values
// (cols % kQuantBlock == 0) is cols / kQuantBlock blocks of kQuantBlock values; a block's
// values are q[i] * scale with one float32 scale per block.
//   Q8_0: q int8 in [-127, 127], one byte per value; scale = max|x| / 127.
//   Q4_0: q in [-8, 7], stored as q + 8 in 4 bits, 16 bytes per block: byte j holds
//         value j in its low nibble and value j + 16 in its high nibble; scale = m / -8
//         with m the block's value of largest magnitude (so m itself is exact).
// A quantized matrix is one blob: all rows' q bytes, row after row, then all scales,
// (rows, cols / kQuantBlock) float32, row after row. The q part's size is a multiple of
// 16, so the scales are 4-byte aligned whenever the blob is.
#include <cstddef>
#include <cstdint>

#include "tensor.h"

namespace rwkv {

constexpr int kQuantBlock = 32;

inline bool is_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }
// Bytes of the q part of a (rows, cols) matrix of type t (Q8_0 or Q4_0).
inline size_t quant_q_bytes(DType t, size_t rows, size_t cols) {
  return t == DType::Q8_0 ? rows * cols : rows * cols / 2;
}
// Bytes of the whole blob: q part plus scales.
inline size_t quant_bytes(DType t, size_t rows, size_t cols) {
  return quant_q_bytes(t, rows, cols) + rows * (cols / kQuantBlock) * sizeof(float);
}

// Quantizes one row x (cols values, cols % kQuantBlock == 0) into q (quant_q_bytes(t, 1,
// cols) bytes) and scale (cols / kQuantBlock floats).
void quantize_row(DType t, const float* x, int cols, uint8_t* q, float* scale);
// Quantizes a (rows, cols) float32 matrix w, row after row, into blob (quant_bytes(t,
// rows, cols) bytes, laid out as above). Returns the blob's scales.
const float* quantize_matrix(DType t, const float* w, int rows, int cols, uint8_t* blob);
// A quantized row as float32 (q * scale), cols values into out.
void dequantize_row(DType t, const uint8_t* q, const float* scale, int cols, float* out);

}  // namespace rwkv
