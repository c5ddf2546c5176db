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
      const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
      auto* qb = reinterpret_cast<int8_t*>(q) + b * kQuantBlock;
      for (int i = 0; i < kQuantBlock; ++i) qb[i] = int8_t(std::clamp(std::nearbyint(xb[i] * id), -127.0f, 127.0f));
      scale[b] = d;
    } else {
      float m = 0;  // the value of largest magnitude, sign kept
      for (int i = 0; i < kQuantBlock; ++i)
        if (std::fabs(xb[i]) > std::fabs(m)) m = xb[i];
      const float d = m / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
      uint8_t* qb = q + b * (kQuantBlock / 2);
      auto level = [&](float v) { return uint8_t(std::clamp(std::nearbyint(v * id), -8.0f, 7.0f) + 8.0f); };
      for (int j = 0; j < kQuantBlock / 2; ++j) qb[j] = uint8_t(level(xb[j]) | (level(xb[j + kQuantBlock / 2]) << 4));
      scale[b] = d;
    }
  }
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
