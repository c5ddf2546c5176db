#pragma once
// The element types of tensors and weight matrices, described once in a traits table
// (in the spirit of ggml's type traits): name, block size, bytes per block, and the
// row conversions to and from float32. Code that needs to know a type asks the table
// instead of switching on it.
//
//   F32, F16, BF16: one value per element (block size 1).
//   Q8_0, Q4_0: block-quantized weight matrices (only ever 2-D), blocks of kQuantBlock
//     values along a row, q[i] * scale with one float32 scale per block:
//       Q8_0: q int8 in [-127, 127], one byte per value; scale = max|x| / 127.
//       Q4_0: q in [-8, 7], stored as q + 8 in 4 bits, 16 bytes per block: byte j holds
//             value j in its low nibble and value j + 16 in its high nibble; scale =
//             m / -8 with m the block's value of largest magnitude (so m itself is exact).
//     A quantized matrix is one blob: all rows' q bytes, row after row, then all scales,
//     (rows, cols / kQuantBlock) float32, row after row. The q part's size is a multiple
//     of 16, so the scales are 4-byte aligned whenever the blob is.
// No checkpoint reader produces Q8_0/Q4_0 from .pth/.safetensors: they come from
// conversion on load or from our own .rwkv files.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace rwkv {

enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0 };
constexpr int kDTypeCount = 5;
constexpr int kQuantBlock = 32;

struct TypeTraits {
  const char* name;   // "F32", "F16", "BF16", "Q8_0", "Q4_0" (also the .rwkv header's names)
  int block;          // values per block: 1, or kQuantBlock for the quantized types
  size_t block_bytes; // bytes of one block's values (the q part of a quantized block)
  bool quantized;     // a float32 scale per block, stored after all the q bytes
  // n values (n % block == 0) of a row to float32; `scale`: the row's block scales
  // (quantized types; ignored by the others).
  void (*to_float)(const uint8_t* q, const float* scale, int n, float* out);
  // n float32 values (n % block == 0) to this type; `scale` receives n / block scales
  // (quantized types). Plain types round to nearest (even), as a cast would.
  void (*from_float)(const float* x, int n, uint8_t* q, float* scale);
};

// The table entry of t.
const TypeTraits& type_traits(DType t);

inline const char* dtype_name(DType t) { return type_traits(t).name; }
inline bool is_quantized(DType t) { return type_traits(t).quantized; }
// Bytes per element of the plain types (F32 4, F16 and BF16 2); 0 for the quantized ones.
inline size_t dtype_size(DType t) { return is_quantized(t) ? 0 : type_traits(t).block_bytes; }
// The type named `name` (as dtype_name writes it): true and `out` set, or false.
bool dtype_from_name(std::string_view name, DType& out);

// Bytes of the values of a (rows, cols) matrix of type t: the q part of a quantized one.
inline size_t matrix_value_bytes(DType t, size_t rows, size_t cols) {
  const TypeTraits& tt = type_traits(t);
  return rows * (cols / size_t(tt.block)) * tt.block_bytes;
}
// Bytes of a whole (rows, cols) matrix of type t: values, plus scales when quantized.
inline size_t matrix_bytes(DType t, size_t rows, size_t cols) {
  return matrix_value_bytes(t, rows, cols) + (is_quantized(t) ? rows * (cols / kQuantBlock) * sizeof(float) : 0);
}

// Quantizes a (rows, cols) float32 matrix w, row after row, into blob (matrix_bytes(t,
// rows, cols) bytes, laid out as above; t quantized). Returns the blob's scales.
const float* quantize_matrix(DType t, const float* w, int rows, int cols, uint8_t* blob);

// IEEE half to float, exactly (subnormals, infinities and NaN included).
float f16_to_f32(uint16_t h);
inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
// Round to nearest even; NaN stays NaN.
uint16_t f32_to_bf16(float f);
uint16_t f32_to_f16(float f);

}  // namespace rwkv
