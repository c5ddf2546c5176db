// Every SIMD kernel against its scalar reference on random inputs of awkward sizes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <malloc.h>
#include <random>
#include <thread>

#include "kernels/kernels.h"
#include "kernels/threads.h"

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

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
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

TEST_CASE("wkv follows the recurrence of docs/computation.md on a hand-sized case", "[kernels]") {
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

TEST_CASE("matrix kernels match the scalar path on larger awkward shapes", "[kernels]") {
  // Rows that leave remainders after the 8 row streams of matvec and the 5-row blocks of
  // matmul; columns around the block (8), the f32 chunk of matmul (768) and past it.
  std::mt19937 rng(43);
  for (DType dt : {DType::F32, DType::BF16})
    for (auto [rows, cols] : {std::pair{37, 9}, {130, 15}, {67, 16}, {9, 33}, {21, 770}, {13, 1600}, {70, 768}}) {
      RandomMatrix W(rows, cols, dt, rng);
      INFO(dtype_name(dt) << " " << rows << "x" << cols);
      const float tol = 1e-5f * float(cols);
      for (int T : {1, 2, 3, 8}) {
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

TEST_CASE("matmul rows are bit-identical to matvec, vecmat rows to single-row vecmat", "[kernels]") {
  // Prefill and step must agree exactly where they compute the same dot product: every
  // row of a matmul is the matvec of that row, whatever T and the row's place in it.
  std::mt19937 rng(44);
  for (DType dt : {DType::F32, DType::BF16})
    for (auto [rows, cols] : {std::pair{45, 40}, {16, 803}, {6, 17}, {5, 7}}) {  // 7: narrower than a block
      RandomMatrix W(rows, cols, dt, rng);
      INFO(dtype_name(dt) << " " << rows << "x" << cols);
      const int T = 7;
      auto X = random_vec(size_t(T) * cols, rng);
      std::vector<float> Y(size_t(T) * rows);
      kernels::matmul(W.m, X.data(), T, Y.data());
      for (int t = 0; t < T; ++t) {
        std::vector<float> y(rows);
        kernels::matvec(W.m, X.data() + size_t(t) * cols, y.data());
        CHECK(same_bits(y, std::vector<float>(Y.begin() + size_t(t) * rows, Y.begin() + size_t(t + 1) * rows)));
      }
      RandomMatrix V(cols, rows, dt, rng);  // vecmat: (T, cols) x (cols, rows)
      std::vector<float> Z(size_t(T) * rows);
      kernels::vecmat(V.m, X.data(), T, Z.data());
      for (int t = 0; t < T; ++t) {
        std::vector<float> z(rows);
        kernels::vecmat(V.m, X.data() + size_t(t) * cols, 1, z.data());
        CHECK(same_bits(z, std::vector<float>(Z.begin() + size_t(t) * rows, Z.begin() + size_t(t + 1) * rows)));
      }
    }
}

TEST_CASE("relu_square matches the scalar path, NaN and signed zero included", "[kernels]") {
  std::mt19937 rng(45);
  auto x = random_vec(103, rng, -2, 2);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[5] = -0.0f;
  x[101] = std::numeric_limits<float>::quiet_NaN();
  auto y = x;
  kernels::relu_square(x.data(), x.size());
  kernels::scalar::relu_square(y.data(), y.size());
  CHECK(std::isnan(x[3]));
  CHECK(std::isnan(x[101]));
  x[3] = y[3] = x[101] = y[101] = 0;
  CHECK(same_bits(x, y));
  CHECK(x[5] == 0.0f);
}

TEST_CASE("wkv_seq equals token-by-token wkv", "[kernels]") {
  std::mt19937 rng(46);
  ThreadPool pool(3);
  for (auto [H, N, T] : {std::tuple{3, 8, 5}, {2, 64, 9}, {1, 6, 4}, {12, 16, 3}}) {
    const size_t C = size_t(H) * N;
    auto S1 = random_vec(C * N, rng);
    auto S2 = S1, S3 = S1;
    auto r = random_vec(T * C, rng), w = random_vec(T * C, rng, 0.1f, 1.0f), k = random_vec(T * C, rng);
    auto v = random_vec(T * C, rng), kk = random_vec(T * C, rng), a = random_vec(T * C, rng, 0, 1);
    std::vector<float> y1(T * C), y2(T * C), y3(T * C);
    ThreadPool one(1);
    kernels::wkv_seq(S1.data(), r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), T, H, N, y1.data(), one);
    kernels::wkv_seq(S3.data(), r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), T, H, N, y3.data(), pool);
    for (int t = 0; t < T; ++t) {
      const size_t o = size_t(t) * C;
      kernels::wkv(S2.data(), r.data() + o, w.data() + o, k.data() + o, v.data() + o, kk.data() + o, a.data() + o,
                   H, N, y2.data() + o);
    }
    INFO("H " << H << " N " << N << " T " << T);
    CHECK(same_bits(S1, S2));
    CHECK(same_bits(y1, y2));
    CHECK(same_bits(S1, S3));
    CHECK(same_bits(y1, y3));
  }
}

TEST_CASE("threaded products are bit-identical to single-thread ones", "[kernels][threads]") {
  std::mt19937 rng(47);
  ThreadPool pool(3);
  INFO("pool of " << pool.size() << (threads_supported() ? "" : " (no thread support in this build)"));
  for (DType dt : {DType::F32, DType::BF16})
    for (auto [rows, cols] : {std::pair{515, 130}, {1030, 64}, {64, 1030}, {300, 300}}) {
      RandomMatrix W(rows, cols, dt, rng);
      INFO(dtype_name(dt) << " " << rows << "x" << cols);
      for (int T : {1, 3, 16}) {
        auto X = random_vec(size_t(T) * cols, rng);
        std::vector<float> Y1(size_t(T) * rows), Y2(size_t(T) * rows);
        kernels::matmul(W.m, X.data(), T, Y1.data());
        kernels::matmul(W.m, X.data(), T, Y2.data(), pool);
        CHECK(same_bits(Y1, Y2));
        if (T == 1) {
          kernels::matvec(W.m, X.data(), Y2.data(), pool);
          CHECK(same_bits(Y1, Y2));
        }
        // Two vecmats side by side (the LoRA path), against one at a time.
        RandomMatrix V(cols, 96, dt, rng);
        auto X2 = random_vec(size_t(T) * rows, rng);
        std::vector<float> Z1(size_t(T) * 96), Z2(size_t(T) * cols), Z3(Z1.size()), Z4(Z2.size());
        kernels::vecmat(V.m, X.data(), T, Z1.data());
        kernels::vecmat(W.m, X2.data(), T, Z2.data());
        const kernels::VecmatJob jobs[] = {{&V.m, X.data(), Z3.data()}, {&W.m, X2.data(), Z4.data()}};
        kernels::vecmat_multi(jobs, 2, T, pool);
        CHECK(same_bits(Z1, Z3));
        CHECK(same_bits(Z2, Z4));
      }
    }
}

TEST_CASE("thread pool: every part runs exactly once, bounds on the grain", "[threads]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    CHECK(pool.size() >= 1);
    CHECK(pool.size() <= (threads_supported() ? threads : 1));
    for (int rep = 0; rep < 50; ++rep)
      for (auto [n_, grain_] : {std::pair{1, 1}, {7, 4}, {100, 4}, {1000, 3}, {4, 8}, {0, 4}}) {
        const int n = n_, grain = grain_;  // (clang 14 cannot capture structured bindings)
        std::vector<int> hits(size_t(n), 0);
        std::atomic<int> bad{0};
        pool.parallel_for(n, grain, [&](int b, int e) {
          if (b >= e || b % grain || (e % grain && e != n)) ++bad;
          for (int i = b; i < e; ++i) ++hits[size_t(i)];
        });
        CHECK(bad == 0);
        CHECK(std::count(hits.begin(), hits.end(), 1) == n);
      }
    std::vector<std::atomic<int>> calls(37);
    for (auto& c : calls) c = 0;
    pool.run(37, [&](int i) { ++calls[size_t(i)]; });
    for (auto& c : calls) CHECK(c == 1);
    std::vector<std::atomic<int>> many(70000);  // more parts than one job can count
    for (auto& c : many) c = 0;
    pool.run(int(many.size()), [&](int i) { ++many[size_t(i)]; });
    int once = 0;
    for (auto& c : many) once += c == 1;
    CHECK(once == int(many.size()));
  }
  CHECK(ThreadPool(0).size() == 1);
}

TEST_CASE("kernels keep no memory between calls (heap in use is back after each)", "[kernels][threads]") {
#ifndef __EMSCRIPTEN__
  WARN("skipped natively: glibc counts the chunks it caches per thread (tcache) as in use; the wasm builds check this");
#else
  // On a thread of its own where the build has threads: scratch kept per thread
  // (thread_local) would stay allocated after the calls, so the heap in use would depend
  // on which pool thread ran what.
  auto calls = [] {
    std::mt19937 rng(51);
    ThreadPool one(1);
    const int H = 2, N = 8, C = H * N, T = 5;
    for (DType dt : {DType::F32, DType::BF16}) {
      RandomMatrix W(40, 24, dt, rng), A(24, 40, dt, rng), B(24, 16, dt, rng);
      const auto x = random_vec(size_t(T) * 40, rng), xa = random_vec(size_t(T) * 24, rng);
      std::vector<float> y(size_t(T) * 40), ya(size_t(T) * 40), yb(size_t(T) * 16);
      const kernels::VecmatJob jobs[] = {{&A.m, xa.data(), ya.data()}, {&B.m, xa.data(), yb.data()}};
      auto S = random_vec(size_t(C) * N, rng);
      const auto r = random_vec(size_t(T) * C, rng), w = random_vec(size_t(T) * C, rng, 0.1f, 1.0f);
      std::vector<float> yw(size_t(T) * C);
      const size_t before = mallinfo().uordblks;
      kernels::matvec(W.m, x.data(), y.data(), one);
      kernels::matmul(W.m, x.data(), T, y.data(), one);
      kernels::vecmat(A.m, xa.data(), 1, ya.data());
      kernels::vecmat(A.m, xa.data(), T, ya.data());
      kernels::vecmat_multi(jobs, 2, 1, one);
      kernels::vecmat_multi(jobs, 2, T, one);
      kernels::wkv(S.data(), r.data(), w.data(), r.data(), r.data(), r.data(), w.data(), H, N, yw.data());
      kernels::wkv_seq(S.data(), r.data(), w.data(), r.data(), r.data(), r.data(), w.data(), T, H, N, yw.data(), one);
      CHECK(size_t(mallinfo().uordblks) == before);
    }
  };
  if (threads_supported()) std::thread(calls).join();
  else calls();
#endif
}
