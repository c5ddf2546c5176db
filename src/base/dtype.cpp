#include "base/dtype.h"

#include <algorithm>
#include <cmath>

namespace rwkv {
namespace {

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void store_le(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

void f32_to_float(const uint8_t* q, const float*, int n, float* out) { std::memcpy(out, q, size_t(n) * 4); }
void f32_from_float(const float* x, int n, uint8_t* q, float*) { std::memcpy(q, x, size_t(n) * 4); }

void f16_to_float(const uint8_t* q, const float*, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = f16_to_f32(load_le<uint16_t>(q + 2 * i));
}
void f16_from_float(const float* x, int n, uint8_t* q, float*) {
  for (int i = 0; i < n; ++i) store_le(q + 2 * i, f32_to_f16(x[i]));
}

void bf16_to_float(const uint8_t* q, const float*, int n, float* out) {
  for (int i = 0; i < n; ++i) out[i] = bf16_to_f32(load_le<uint16_t>(q + 2 * i));
}
void bf16_from_float(const float* x, int n, uint8_t* q, float*) {
  for (int i = 0; i < n; ++i) store_le(q + 2 * i, f32_to_bf16(x[i]));
}

void q8_0_to_float(const uint8_t* q, const float* scale, int n, float* out) {
  for (int b = 0; b < n / kQuantBlock; ++b) {
    const float d = scale[b];
    const auto* qb = reinterpret_cast<const int8_t*>(q) + b * kQuantBlock;
    for (int i = 0; i < kQuantBlock; ++i) out[b * kQuantBlock + i] = float(qb[i]) * d;
  }
}
void q8_0_from_float(const float* x, int n, uint8_t* q, float* scale) {
  for (int b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    // The levels in double: 1 / d overflows float when the block is subnormal.
    const double id = amax > 0 ? 127.0 / double(amax) : 0.0;
    auto* qb = reinterpret_cast<int8_t*>(q) + b * kQuantBlock;
    for (int i = 0; i < kQuantBlock; ++i) qb[i] = int8_t(std::clamp(std::nearbyint(double(xb[i]) * id), -127.0, 127.0));
    scale[b] = amax / 127.0f;
  }
}

void q4_0_to_float(const uint8_t* q, const float* scale, int n, float* out) {
  constexpr int half = kQuantBlock / 2;
  for (int b = 0; b < n / kQuantBlock; ++b) {
    const float d = scale[b];
    const uint8_t* qb = q + b * half;
    float* ob = out + b * kQuantBlock;
    for (int j = 0; j < half; ++j) {
      ob[j] = float(int(qb[j] & 15) - 8) * d;
      ob[j + half] = float(int(qb[j] >> 4) - 8) * d;
    }
  }
}
void q4_0_from_float(const float* x, int n, uint8_t* q, float* scale) {
  constexpr int half = kQuantBlock / 2;
  for (int b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float m = 0;  // the value of largest magnitude, sign kept
    for (int i = 0; i < kQuantBlock; ++i)
      if (std::fabs(xb[i]) > std::fabs(m)) m = xb[i];
    const double id = m != 0 ? -8.0 / double(m) : 0.0;
    uint8_t* qb = q + b * half;
    auto level = [&](float v) { return uint8_t(std::clamp(std::nearbyint(double(v) * id), -8.0, 7.0) + 8.0); };
    for (int j = 0; j < half; ++j) qb[j] = uint8_t(level(xb[j]) | (level(xb[j + half]) << 4));
    scale[b] = m / -8.0f;
  }
}

// In the order of DType.
constexpr TypeTraits kTraits[kDTypeCount] = {
    {"F32", 1, 4, false, f32_to_float, f32_from_float},
    {"F16", 1, 2, false, f16_to_float, f16_from_float},
    {"BF16", 1, 2, false, bf16_to_float, bf16_from_float},
    {"Q8_0", kQuantBlock, kQuantBlock, true, q8_0_to_float, q8_0_from_float},
    {"Q4_0", kQuantBlock, kQuantBlock / 2, true, q4_0_to_float, q4_0_from_float},
};

}  // namespace

const TypeTraits& type_traits(DType t) { return kTraits[size_t(t) < size_t(kDTypeCount) ? size_t(t) : 0]; }

bool dtype_from_name(std::string_view name, DType& out) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (name == kTraits[i].name) return out = DType(i), true;
  return false;
}

const float* quantize_matrix(DType t, const float* w, int rows, int cols, uint8_t* blob) {
  const TypeTraits& tt = type_traits(t);
  const size_t rq = matrix_value_bytes(t, 1, size_t(cols)), nb = size_t(cols) / kQuantBlock;
  auto* scales = reinterpret_cast<float*>(blob + matrix_value_bytes(t, size_t(rows), size_t(cols)));
  for (size_t r = 0; r < size_t(rows); ++r) tt.from_float(w + r * size_t(cols), cols, blob + r * rq, scales + r * nb);
  return scales;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(man & 0x400)) man <<= 1, --exp;
    bits = sign | (exp << 23) | ((man & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((b >> 16) | 0x40);  // NaN stays a (quiet) NaN
  return uint16_t((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

uint16_t f32_to_f16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint16_t sign = uint16_t((b >> 16) & 0x8000);
  const uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return uint16_t(sign | 0x7E00);  // NaN
  if (a >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // rounds to infinity (65520 and up)
  if (a < 0x38800000u) {                                  // below 2^-14: subnormal or zero
    // The value in units of 2^-24, rounded to nearest even by the float adder.
    float v;
    std::memcpy(&v, &a, 4);
    return uint16_t(sign | uint16_t(std::nearbyint(double(v) * 16777216.0)));
  }
  const uint32_t r = a + 0xFFF + ((a >> 13) & 1);  // round the 13 dropped bits to nearest even
  return uint16_t(sign | ((r - 0x38000000u) >> 13));
}

}  // namespace rwkv
