// The quantized weight types (base/dtype.h): rounding of from_float, and the integer
// kernels of matvec / matmul against the scalar path, which multiplies the dequantized
// weights with the exact x (so it also checks the int16 quantization of x).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/kernels.h"
#include "kernels/relaxed/relaxed.h"
#include "base/dtype.h"
#include "kernels/threads.h"

using namespace rwkv;

namespace {

// A random (rows, cols) matrix of type t, as its blob.
struct QuantMatrix {
  std::vector<uint8_t> blob;
  std::vector<float> deq;  // the dequantized weights (rows, cols)
  Matrix m;
  QuantMatrix(DType t, int rows, int cols, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 0.05f);
    deq.resize(size_t(rows) * cols);
    for (auto& v : deq) v = nd(rng);
    for (int r = 0; r < rows; ++r) deq[size_t(r) * cols + size_t(r) % cols] *= 8;  // an outlier per row
    blob.resize(matrix_bytes(t, rows, cols));
    m = {t, rows, cols, blob.data(), quantize_matrix(t, deq.data(), rows, cols, blob.data())};
    for (int r = 0; r < rows; ++r) m.row(r, deq.data() + size_t(r) * cols);
  }
};

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> ud(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = ud(rng);
  return v;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// |y - y_ref| allowed for one output: x is rounded to 15 bits of its largest magnitude.
float tolerance(const float* w, const float* x, int cols) {
  float amax = 0, sw = 0, swx = 0;
  for (int c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[c]));
  for (int c = 0; c < cols; ++c) sw += std::fabs(w[c]), swx += std::fabs(w[c] * x[c]);
  return 0.5f * amax / 32767.0f * sw * 1.01f + 2e-6f * swx + 1e-7f;
}

// The SIMD128 kernels alone for the scope: the relaxed-SIMD module (wasm, where the host
// runs it) does the Q4_0 prefill otherwise, with int8 x (its own tests below).
struct Simd128Only {
  Simd128Only() { kernels::relaxed::set_enabled(false); }
  ~Simd128Only() { kernels::relaxed::set_enabled(true); }
};

// |y - y_ref| allowed for one output of the relaxed kernels: x rounded to int8 per block
// of 32 (half a step of max|x_b| / 127), float32 sums.
float tolerance8(const float* w, const float* x, int cols) {
  float t = 0, swx = 0;
  for (int b = 0; b < cols; b += kQuantBlock) {
    float amax = 0, sw = 0;
    for (int c = b; c < b + kQuantBlock; ++c) amax = std::max(amax, std::fabs(x[c])), sw += std::fabs(w[c]);
    t += 0.5f * amax / 127.0f * sw;
  }
  for (int c = 0; c < cols; ++c) swx += std::fabs(w[c] * x[c]);
  return t * 1.01f + 2e-6f * swx + 1e-7f;
}

}  // namespace

TEST_CASE("from_float: rounding to the nearest level, within half a step", "[kernels][quant]") {
  std::mt19937 rng(7);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(t));
    auto x = random_vec(96, rng);
    x[5] = -3.0f;  // the largest magnitude of block 0
    x[40] = 0.0f;
    std::fill(x.begin() + 64, x.end(), 0.0f);  // an all-zero block
    std::vector<uint8_t> q(matrix_value_bytes(t, 1, 96));
    float scale[3];
    type_traits(t).from_float(x.data(), 96, q.data(), scale);
    std::vector<float> y(96);
    type_traits(t).to_float(q.data(), scale, 96, y.data());
    CHECK(y[5] == Approx(-3.0f).epsilon(1e-6));
    CHECK(y[40] == 0.0f);
    CHECK(scale[2] == 0.0f);
    for (int i = 64; i < 96; ++i) CHECK(y[i] == 0.0f);
    for (int b = 0; b < 2; ++b)
      for (int i = b * 32; i < b * 32 + 32; ++i) {
        // Q8_0: half a step; Q4_0: a full step at the clamped +7 end of the range.
        const float step = std::fabs(scale[b]);
        CHECK(std::fabs(x[i] - y[i]) <= (t == DType::Q8_0 ? 0.5f : 1.0f) * step * 1.0001f);
      }
  }
  // Q8_0 by hand: block 0..31 scaled so that max|x| = 127 -> q = x exactly, scale 1.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = float(i * 4 - 64);  // -64 .. 60; max |x| 64
  x[31] = 127.0f;
  int8_t q[32];
  float s;
  type_traits(DType::Q8_0).from_float(x.data(), 32, reinterpret_cast<uint8_t*>(q), &s);
  CHECK(s == 1.0f);
  for (int i = 0; i < 32; ++i) CHECK(q[i] == int8_t(x[i]));
  // Q4_0 by hand: m = -8 -> scale 1; value j in the low nibble of byte j, j+16 in the high.
  std::vector<float> z(32, 0.0f);
  z[0] = -8, z[1] = 7, z[16] = 3, z[17] = -1;
  uint8_t p[16];
  type_traits(DType::Q4_0).from_float(z.data(), 32, p, &s);
  CHECK(s == 1.0f);
  CHECK(p[0] == uint8_t(0 | (11 << 4)));
  CHECK(p[1] == uint8_t(15 | (7 << 4)));
  CHECK(p[2] == uint8_t(8 | (8 << 4)));
}

TEST_CASE("quantization of tiny (subnormal) and huge values stays finite", "[kernels][quant]") {
  // 1 / scale overflows float for subnormal blocks: found by fuzz_model (UB in the cast).
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(t));
    std::vector<float> w(64, 1e-42f);
    w[1] = -3e-41f;
    w[40] = 3e38f;
    std::vector<uint8_t> blob(matrix_bytes(t, 1, 64));
    auto* sc = reinterpret_cast<float*>(blob.data() + matrix_value_bytes(t, 1, 64));
    type_traits(t).from_float(w.data(), 64, blob.data(), sc);
    const Matrix W{t, 1, 64, blob.data(), sc};
    std::vector<float> back(64);
    W.row(0, back.data());
    for (float v : back) CHECK(std::isfinite(v));
    CHECK(back[40] == Approx(3e38f).epsilon(0.07));
    // A subnormal activation row (its scale underflows) times ordinary weights.
    std::vector<float> u(64, 0.5f);
    type_traits(t).from_float(u.data(), 64, blob.data(), sc);
    std::vector<float> x(64, 2e-41f);
    x[5] = 1e-39f;
    float y = 1;
    kernels::matvec(W, x.data(), &y);
    CHECK(std::isfinite(y));
    CHECK(std::fabs(y) < 1e-37f);
  }
}

TEST_CASE("quantized matvec and matmul match the scalar path", "[kernels][quant]") {
  Simd128Only simd128;
  std::mt19937 rng(11);
  for (DType t : {DType::Q8_0, DType::Q4_0})
    for (int rows : {1, 3, 4, 5, 9, 37})
      for (int cols : {32, 64, 96, 800}) {
        QuantMatrix W(t, rows, cols, rng);
        INFO(dtype_name(t) << " " << rows << "x" << cols);
        for (int T : {1, 2, 3, 8}) {
          auto X = random_vec(size_t(T) * cols, rng);
          X[0] = 4.0f;  // a large activation, as after the FFN's relu^2
          std::vector<float> Y1(size_t(T) * rows), Y2(Y1.size());
          kernels::matmul(W.m, X.data(), T, Y1.data());
          kernels::scalar::matmul(W.m, X.data(), T, Y2.data());
          for (int tt = 0; tt < T; ++tt)
            for (int r = 0; r < rows; ++r) {
              const size_t i = size_t(tt) * rows + r;
              CHECK(std::fabs(Y1[i] - Y2[i]) <= tolerance(&W.deq[size_t(r) * cols], &X[size_t(tt) * cols], cols));
            }
          // Every row of a matmul is the matvec of that row, bit for bit.
          for (int tt = 0; tt < T; ++tt) {
            std::vector<float> y(rows);
            kernels::matvec(W.m, X.data() + size_t(tt) * cols, y.data());
            CHECK(same_bits(y.data(), Y1.data() + size_t(tt) * rows, size_t(rows)));
          }
        }
      }
}

TEST_CASE("quantized products: threads give the same bits, NaN in x gives NaN", "[kernels][quant][threads]") {
  Simd128Only simd128;
  std::mt19937 rng(12);
  ThreadPool pool(3);
  kernels::set_parallel_min(1);
  for (DType t : {DType::Q8_0, DType::Q4_0})
    for (auto [rows, cols] : {std::pair{515, 128}, {1030, 64}, {64, 1024}}) {
      QuantMatrix W(t, rows, cols, rng);
      INFO(dtype_name(t) << " " << rows << "x" << cols);
      for (int T : {1, 3, 16}) {
        auto X = random_vec(size_t(T) * cols, rng);
        std::vector<float> Y1(size_t(T) * rows), Y2(Y1.size());
        kernels::matmul(W.m, X.data(), T, Y1.data());
        kernels::matmul(W.m, X.data(), T, Y2.data(), pool);
        CHECK(same_bits(Y1.data(), Y2.data(), Y1.size()));
      }
      auto x = random_vec(size_t(cols), rng);
      x[3] = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> y(rows);
      kernels::matvec(W.m, x.data(), y.data());
      CHECK(std::isnan(y[0]));
      CHECK(std::isnan(y[rows - 1]));
    }
  kernels::set_parallel_min(size_t(1) << 16);
}

TEST_CASE("relaxed-SIMD Q4_0 prefill: the scalar path within the int8 tolerance, the same bits for any threads",
          "[kernels][quant][relaxed][threads]") {
  if (!kernels::relaxed::module()) {
    WARN("the relaxed-SIMD module is not loaded (a native build, no clang-19 at build time, or a host without "
         "relaxed SIMD): only the SIMD128 kernels run here");
    return;
  }
  std::mt19937 rng(13);
  for (int rows : {1, 2, 3, 5, 37})
    for (int cols : {32, 64, 800}) {
      QuantMatrix W(DType::Q4_0, rows, cols, rng);
      INFO(rows << "x" << cols);
      for (int T : {2, 3, 4, 5, 8, 17}) {
        auto X = random_vec(size_t(T) * cols, rng);
        X[0] = 4.0f;  // a large activation, as after the FFN's relu^2
        std::vector<float> Y1(size_t(T) * rows), Y2(Y1.size()), Y3(Y1.size());
        kernels::matmul(W.m, X.data(), T, Y1.data());
        kernels::scalar::matmul(W.m, X.data(), T, Y2.data());
        {
          Simd128Only simd128;
          kernels::matmul(W.m, X.data(), T, Y3.data());
        }
        CHECK_FALSE(same_bits(Y1.data(), Y3.data(), Y1.size()));  // really another path
        for (int tt = 0; tt < T; ++tt)
          for (int r = 0; r < rows; ++r) {
            const size_t i = size_t(tt) * rows + r;
            CHECK(std::fabs(Y1[i] - Y2[i]) <= tolerance8(&W.deq[size_t(r) * cols], &X[size_t(tt) * cols], cols));
          }
      }
    }
  ThreadPool pool(3);
  kernels::set_parallel_min(1);
  for (auto [rows, cols] : {std::pair{515, 128}, {1030, 64}, {64, 1024}}) {
    QuantMatrix W(DType::Q4_0, rows, cols, rng);
    INFO(rows << "x" << cols);
    for (int T : {3, 16}) {
      auto X = random_vec(size_t(T) * cols, rng);
      X[size_t(T - 1) * cols + 5] = std::numeric_limits<float>::infinity();  // the last token's outputs: NaN
      std::vector<float> Y1(size_t(T) * rows), Y2(Y1.size());
      kernels::matmul(W.m, X.data(), T, Y1.data());
      kernels::matmul(W.m, X.data(), T, Y2.data(), pool);
      CHECK(same_bits(Y1.data(), Y2.data(), Y1.size()));
      CHECK(std::isfinite(Y1[0]));
      CHECK(std::isnan(Y1[size_t(T - 1) * rows]));
      CHECK(std::isnan(Y1[Y1.size() - 1]));
    }
  }
  kernels::set_parallel_min(size_t(1) << 16);
}
