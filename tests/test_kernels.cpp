// Every SIMD kernel against its scalar reference on random inputs of awkward sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernels.h"

using namespace rwkv;

namespace {

struct RandomMatrix {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
  Matrix m;
  RandomMatrix(int rows, int cols, DType dt, std::mt19937& rng) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    f32.resize(size_t(rows) * cols);
    for (auto& v : f32) v = nd(rng);
    if (dt == DType::BF16) {
      bf16.resize(f32.size());
      for (size_t i = 0; i < f32.size(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &f32[i], 4);
        bf16[i] = uint16_t(bits >> 16);
      }
      m = {dt, rows, cols, bf16.data()};
    } else {
      m = {dt, rows, cols, f32.data()};
    }
  }
};

std::vector<float> random_vec(size_t n, std::mt19937& rng, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> ud(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = ud(rng);
  return v;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("matrix kernels match the scalar path", "[kernels]") {
  std::mt19937 rng(42);
  for (DType dt : {DType::F32, DType::BF16})
    for (int rows : {1, 3, 4, 5, 8, 13, 64})
      for (int cols : {1, 3, 4, 7, 8, 17, 64, 100}) {
        RandomMatrix W(rows, cols, dt, rng);
        INFO(dtype_name(dt) << " " << rows << "x" << cols);
        const float tol = 1e-5f * float(cols);
        auto x = random_vec(cols, rng);
        std::vector<float> y1(rows), y2(rows);
        kernels::matvec(W.m, x.data(), y1.data());
        kernels::scalar::matvec(W.m, x.data(), y2.data());
        CHECK(max_diff(y1, y2) <= tol);
        for (int T : {1, 2, 3, 5}) {
          auto X = random_vec(size_t(T) * cols, rng);
          std::vector<float> Y1(size_t(T) * rows), Y2(size_t(T) * rows);
          kernels::matmul(W.m, X.data(), T, Y1.data());
          kernels::scalar::matmul(W.m, X.data(), T, Y2.data());
          CHECK(max_diff(Y1, Y2) <= tol);
          auto Xv = random_vec(size_t(T) * rows, rng);
          std::vector<float> Z1(size_t(T) * cols), Z2(size_t(T) * cols);
          kernels::vecmat(W.m, Xv.data(), T, Z1.data());
          kernels::scalar::vecmat(W.m, Xv.data(), T, Z2.data());
          CHECK(max_diff(Z1, Z2) <= 1e-5f * float(rows));
        }
      }
}

TEST_CASE("matvec computes W x", "[kernels]") {
  // A hand-checked case: [[1, 2], [3, 4], [-1, 0.5]] * [2, -1] = [0, 2, -2.5].
  const float w[] = {1, 2, 3, 4, -1, 0.5f};
  const Matrix W{DType::F32, 3, 2, w};
  const float x[] = {2, -1};
  float y[3];
  kernels::matvec(W, x, y);
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == 2.0f);
  CHECK(y[2] == -2.5f);
  float z[2];  // x' W for x' = [1, 1, 2]: [1 + 3 - 2, 2 + 4 + 1]
  const float xv[] = {1, 1, 2};
  kernels::vecmat(W, xv, 1, z);
  CHECK(z[0] == 2.0f);
  CHECK(z[1] == 7.0f);
}

TEST_CASE("layer norm matches the scalar path and the definition", "[kernels]") {
  std::mt19937 rng(7);
  for (int n : {1, 2, 5, 8, 31, 64, 768}) {
    auto x = random_vec(n, rng, -3, 5), w = random_vec(n, rng), b = random_vec(n, rng);
    std::vector<float> y1(n), y2(n);
    kernels::layer_norm(x.data(), w.data(), b.data(), n, 1e-5f, y1.data());
    kernels::scalar::layer_norm(x.data(), w.data(), b.data(), n, 1e-5f, y2.data());
    CHECK(max_diff(y1, y2) <= 1e-5f);
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= n;
    for (float v : x) var += (v - mean) * (v - mean);
    var /= n;
    for (int i = 0; i < n; ++i)
      CHECK(std::fabs(y2[i] - float((x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i])) <= 1e-4f);
  }
}

TEST_CASE("wkv state update matches the scalar path", "[kernels]") {
  std::mt19937 rng(9);
  for (auto [H, N] : {std::pair{1, 4}, {2, 8}, {3, 12}, {2, 64}, {1, 6}}) {
    const size_t C = size_t(H) * N;
    auto S1 = random_vec(C * N, rng);
    auto S2 = S1;
    auto r = random_vec(C, rng), w = random_vec(C, rng, 0.1f, 1.0f), k = random_vec(C, rng), v = random_vec(C, rng);
    auto kk = random_vec(C, rng), a = random_vec(C, rng, 0, 1);
    std::vector<float> y1(C), y2(C);
    for (int step = 0; step < 3; ++step) {
      kernels::wkv(S1.data(), r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), H, N, y1.data());
      kernels::scalar::wkv(S2.data(), r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), H, N, y2.data());
    }
    INFO("H " << H << " N " << N);
    float scale = 1;  // the state grows over the steps: compare relative to its size
    for (float s : S2) scale = std::max(scale, std::fabs(s));
    for (float s : y2) scale = std::max(scale, std::fabs(s));
    CHECK(max_diff(S1, S2) <= 2e-6f * scale * float(N));
    CHECK(max_diff(y1, y2) <= 2e-6f * scale * float(N));
  }
}

TEST_CASE("wkv follows the SPEC recurrence on a hand-sized case", "[kernels]") {
  // One head, N = 2, S starts at [[1, 2], [3, 4]].
  float S[4] = {1, 2, 3, 4};
  const float r[] = {1, 0}, w[] = {0.5f, 0.25f}, k[] = {1, 1}, v[] = {1, -1}, kk[] = {1, 0}, a[] = {1, 1};
  float y[2];
  kernels::scalar::wkv(S, r, w, k, v, kk, a, 1, 2, y);
  // row 0: sa = -(1*1) = -1; S = [1*.5 + -1*1 + 1, 2*.25 + 0 + 1] = [0.5, 1.5]; y0 = 0.5
  // row 1: sa = -3;          S = [3*.5 - 3 - 1, 4*.25 + 0 - 1] = [-2.5, 0];  y1 = -2.5
  CHECK(S[0] == 0.5f);
  CHECK(S[1] == 1.5f);
  CHECK(S[2] == -2.5f);
  CHECK(S[3] == 0.0f);
  CHECK(y[0] == 0.5f);
  CHECK(y[1] == -2.5f);
}
