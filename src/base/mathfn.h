#pragma once
// exp, sigmoid and tanh computed by our own code rather than libm, so that the native
// build and the wasm build (glibc vs musl) give bit-identical results and the same seed
// samples the same text everywhere. Accurate to about 2 ulp; NaN and infinities
// propagate as in libm.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace rwkv::math {

inline float exp(float x) {
  if (!(x < 88.72f)) return x != x ? x : INFINITY;  // NaN stays NaN; overflow
  if (x < -103.98f) return 0.0f;
  // x = n*ln2 + r, |r| <= ln2/2, with ln2 split in two for an exact product.
  const float n = std::nearbyint(x * 1.44269504f);
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-06f;
  // exp(r) by its Taylor series to r^7 (error below 1e-8 relative on |r| <= 0.35).
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // Scale by 2^n in two steps so subnormal results and n = 128 stay exact.
  const int ni = int(n);
  const int n1 = ni / 2, n2 = ni - n1;
  auto pow2 = [](int e) {
    const uint32_t bits = uint32_t(e + 127) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  };
  return p * pow2(n1) * pow2(n2);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

inline float tanh(float x) {
  if (x > 9.0f) return 1.0f;
  if (x < -9.0f) return -1.0f;
  if (std::fabs(x) < 0.0004f) return x;  // avoids cancellation near 0: tanh x = x - x^3/3
  const float e = exp(2.0f * x);
  return (e - 1.0f) / (e + 1.0f);
}

}  // namespace rwkv::math
