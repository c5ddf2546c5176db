#include "quant.h"

#include <algorithm>
#include <cmath>

namespace rwkv {

void quantize_row(DType t, const float* x, int cols, uint8_t* q, float* scale) {
  for (int b = 0; b < cols / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    if (t == DType::Q8_0) {
      float amax = 0;
      for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
      // The levels in double: 1 / d overflows float when the block is subnormal.
      const double id = amax > 0 ? 127.0 / double(amax) : 0.0;
      auto* qb = reinterpret_cast<int8_t*>(q) + b * kQuantBlock;
      for (int i = 0; i < kQuantBlock; ++i) qb[i] = int8_t(std::clamp(std::nearbyint(double(xb[i]) * id), -127.0, 127.0));
      scale[b] = amax / 127.0f;
    } else {
      float m = 0;  // the value of largest magnitude, sign kept
      for (int i = 0; i < kQuantBlock; ++i)
        if (std::fabs(xb[i]) > std::fabs(m)) m = xb[i];
      const double id = m != 0 ? -8.0 / double(m) : 0.0;
      uint8_t* qb = q + b * (kQuantBlock / 2);
      auto level = [&](float v) { return uint8_t(std::clamp(std::nearbyint(double(v) * id), -8.0, 7.0) + 8.0); };
      for (int j = 0; j < kQuantBlock / 2; ++j) qb[j] = uint8_t(level(xb[j]) | (level(xb[j + kQuantBlock / 2]) << 4));
      scale[b] = m / -8.0f;
    }
  }
}

const float* quantize_matrix(DType t, const float* w, int rows, int cols, uint8_t* blob) {
  const size_t rq = quant_q_bytes(t, 1, size_t(cols)), nb = size_t(cols) / kQuantBlock;
  auto* scales = reinterpret_cast<float*>(blob + quant_q_bytes(t, size_t(rows), size_t(cols)));
  for (size_t r = 0; r < size_t(rows); ++r) quantize_row(t, w + r * size_t(cols), cols, blob + r * rq, scales + r * nb);
  return scales;
}

void dequantize_row(DType t, const uint8_t* q, const float* scale, int cols, float* out) {
  for (int b = 0; b < cols / kQuantBlock; ++b) {
    const float d = scale[b];
    float* ob = out + b * kQuantBlock;
    if (t == DType::Q8_0) {
      const auto* qb = reinterpret_cast<const int8_t*>(q) + b * kQuantBlock;
      for (int i = 0; i < kQuantBlock; ++i) ob[i] = float(qb[i]) * d;
    } else {
      const uint8_t* qb = q + b * (kQuantBlock / 2);
      for (int j = 0; j < kQuantBlock / 2; ++j) {
        ob[j] = float(int(qb[j] & 15) - 8) * d;
        ob[j + kQuantBlock / 2] = float(int(qb[j] >> 4) - 8) * d;
      }
    }
  }
}

}  // namespace rwkv
