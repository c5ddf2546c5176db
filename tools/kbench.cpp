// Kernel micro-benchmarks (best of several repetitions, so that a busy machine disturbs
// them less): matvec in cache and streaming, matmul over a chunk of tokens, vecmat, wkv,
// and the threaded forms. For tuning the kernels; `rwkv_bench` measures the model.
//   rwkv_kbench [--threads N] [--filter NAME]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>
#include <ctime>
#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#endif

#include "kernels/kernels.h"
#include "base/dtype.h"
#include "kernels/threads.h"

using namespace rwkv;
using Clock = std::chrono::steady_clock;

namespace {

struct Mat {
  std::vector<uint16_t> bf16;
  std::vector<float> f32;
  std::vector<uint8_t> blob;
  Matrix m;
  Mat(int rows, int cols, DType dt) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> ud(-1, 1);
    if (is_quantized(dt)) {
      std::vector<float> w(size_t(rows) * cols);
      for (auto& v : w) v = ud(rng);
      blob.resize(matrix_bytes(dt, rows, cols));
      m = {dt, rows, cols, blob.data(), quantize_matrix(dt, w.data(), rows, cols, blob.data())};
    } else if (dt == DType::BF16) {
      bf16.resize(size_t(rows) * cols);
      for (auto& v : bf16) {
        const float f = ud(rng);
        uint32_t b;
        std::memcpy(&b, &f, 4);
        v = uint16_t(b >> 16);
      }
      m = {dt, rows, cols, bf16.data()};
    } else {
      f32.resize(size_t(rows) * cols);
      for (auto& v : f32) v = ud(rng);
      m = {dt, rows, cols, f32.data()};
    }
  }
};

std::vector<float> vec(size_t n) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> ud(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = ud(rng);
  return v;
}

// Single thread: time on the CPU rather than on the wall, so that other processes on a
// busy machine disturb the figures less. In wasm under Node: the process's CPU time
// (process.cpuUsage; the only JS thread that works is this one).
bool g_cpu_time = false;

#if defined(__EMSCRIPTEN__)
EM_JS(double, node_cpu_s, (), {
  if (typeof process == "undefined" || !process.cpuUsage) return -1;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
});
#endif

double now_s() {
  if (g_cpu_time) {
#if defined(__EMSCRIPTEN__)
    return node_cpu_s();
#else
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
#endif
  }
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Best time in seconds of `reps` runs of fn (each run `inner` calls).
double best(int reps, int inner, const std::function<void()>& fn) {
  double b = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    for (int i = 0; i < inner; ++i) fn();
    b = std::min(b, (now_s() - t0) / inner);
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::string filter;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--filter")) filter = argv[i + 1];
  }
  ThreadPool pool(threads);
  g_cpu_time = pool.size() == 1;
#if defined(__EMSCRIPTEN__)
  g_cpu_time = g_cpu_time && node_cpu_s() >= 0;
#endif
  auto want = [&](const std::string& n) { return filter.empty() || n.find(filter) != std::string::npos; };
  std::printf("simd %s, threads %d%s\n", kernels::simd_name(), pool.size(), g_cpu_time ? " (CPU time)" : "");

  for (DType dt : {DType::BF16, DType::F32, DType::Q8_0, DType::Q4_0}) {
    const char* dn = dtype_name(dt);
    for (auto [rows_, cols_] : {std::pair{768, 768}, {3072, 768}, {768, 3072}}) {
      const int rows = rows_, cols = cols_;
      const std::string name = std::string("matvec ") + dn + " " + std::to_string(rows) + "x" + std::to_string(cols);
      if (!want(name)) continue;
      Mat W(rows, cols, dt);
      auto x = vec(cols);
      std::vector<float> y(rows);
      const double s = best(20, 20, [&] { kernels::matvec(W.m, x.data(), y.data(), pool); });
      std::printf("%-34s in cache  %8.1f us  %6.2f GB/s  %6.2f GMAC/s\n", name.c_str(), s * 1e6,
                  W.m.bytes() / s / 1e9, double(rows) * cols / s / 1e9);
    }
    {
      const std::string name = std::string("matvec ") + dn + " 65536x768";
      if (want(name)) {
        Mat W(65536, 768, dt);
        auto x = vec(768);
        std::vector<float> y(65536);
        const double s = best(7, 1, [&] { kernels::matvec(W.m, x.data(), y.data(), pool); });
        std::printf("%-34s streaming %8.1f us  %6.2f GB/s\n", name.c_str(), s * 1e6, W.m.bytes() / s / 1e9);
      }
    }
    for (auto [rows_, cols_] : {std::pair{768, 768}, {3072, 768}, {768, 3072}}) {
      const int rows = rows_, cols = cols_, T = 64;
      const std::string name = std::string("matmul ") + dn + " " + std::to_string(rows) + "x" + std::to_string(cols) + " T64";
      if (!want(name)) continue;
      Mat W(rows, cols, dt);
      auto X = vec(size_t(T) * cols);
      std::vector<float> Y(size_t(T) * rows);
      const double s = best(30, 1, [&] { kernels::matmul(W.m, X.data(), T, Y.data(), pool); });
      std::printf("%-34s           %8.1f us  %6.2f GMAC/s\n", name.c_str(), s * 1e6, double(rows) * cols * T / s / 1e9);
    }
    for (auto [rows_, cols_] : {std::pair{768, 64}, {64, 768}, {768, 128}, {128, 768}}) {
      const int rows = rows_, cols = cols_;
      // Many copies, used in turn, so that each call reads from memory as in decode.
      const std::string name = std::string("vecmat ") + dn + " " + std::to_string(rows) + "x" + std::to_string(cols) + " T1";
      if (is_quantized(dt) || !want(name)) continue;  // the LoRAs are never quantized
      const int copies = int((size_t(256) << 20) / (size_t(rows) * cols * dtype_size(dt)));
      std::vector<Mat> Ws;
      Ws.reserve(copies);
      for (int i = 0; i < copies; ++i) Ws.emplace_back(rows, cols, dt);
      auto X = vec(rows);
      std::vector<float> Y(cols);
      const double s = best(5, 1, [&] {
        for (auto& W : Ws) kernels::vecmat(W.m, X.data(), 1, Y.data());
      }) / copies;
      std::printf("%-34s streaming %8.1f us  %6.2f GB/s\n", name.c_str(), s * 1e6, Ws[0].m.bytes() / s / 1e9);
    }
    for (auto [rows_, cols_, T_] : {std::tuple{768, 64, 1}, {64, 768, 1}, {768, 128, 1}, {768, 64, 64}, {64, 768, 64}}) {
      const int rows = rows_, cols = cols_, T = T_;
      const std::string name = std::string("vecmat ") + dn + " " + std::to_string(rows) + "x" + std::to_string(cols) + " T" + std::to_string(T);
      if (is_quantized(dt) || !want(name)) continue;
      Mat W(rows, cols, dt);
      auto X = vec(size_t(T) * rows);
      std::vector<float> Y(size_t(T) * cols);
      const double s = best(T == 1 ? 10 : 30, T == 1 ? 50 : 1, [&] { kernels::vecmat(W.m, X.data(), T, Y.data()); });
      std::printf("%-34s           %8.1f us  %6.2f GMAC/s\n", name.c_str(), s * 1e6, double(rows) * cols * T / s / 1e9);
    }
  }
  for (DType dt : {DType::BF16, DType::Q8_0}) {
    // The matvecs of one decoded token of the 0.1B shape, in order, on distinct
    // matrices: how close the big products get to the memory bandwidth.
    const std::string name = std::string("matvec decode sequence ") + dtype_name(dt);
    if (!want(name)) continue;
    std::vector<Mat> mats;
    for (int l = 0; l < 12; ++l) {
      for (int i = 0; i < 4; ++i) mats.emplace_back(768, 768, dt);
      mats.emplace_back(3072, 768, dt);
      mats.emplace_back(768, 3072, dt);
    }
    mats.emplace_back(65536, 768, dt);
    size_t bytes = 0;
    for (auto& m : mats) bytes += m.m.bytes();
    auto x = vec(3072);
    std::vector<float> y(65536);
    const double s = best(7, 1, [&] {
      for (auto& m : mats) kernels::matvec(m.m, x.data(), y.data(), pool);
    });
    std::printf("%-34s streaming %8.1f us  %6.2f GB/s (%.0f MB)\n", name.c_str(), s * 1e6,
                bytes / s / 1e9, bytes / 1e6);
  }
  if (want("wkv")) {
    const int H = 12, N = 64, C = H * N;
    auto S = vec(size_t(C) * N);
    for (auto& v : S) v *= 0.01f;
    auto r = vec(C), w = vec(C), k = vec(C), v = vec(C), kk = vec(C), a = vec(C);
    for (auto& x : w) x = 0.9f + 0.05f * x;
    for (auto& x : a) x = 0.5f + 0.5f * x;
    std::vector<float> y(C);
    const double s = best(20, 20, [&] {
      kernels::wkv(S.data(), r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), H, N, y.data());
    });
    std::printf("%-34s           %8.1f us\n", "wkv H12 N64", s * 1e6);
  }
  return 0;
}
