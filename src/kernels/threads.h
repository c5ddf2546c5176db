#pragma once
// A small pool of worker threads for splitting one kernel call by rows (std::thread based;
// natively and in an Emscripten -pthread build). In a build without thread support (the
// single-thread wasm module) every pool has size 1 and runs everything on the caller.
//
// A job is cut into parts that the calling thread and the workers claim one at a time, so
// a worker that the OS has not scheduled yet never holds the caller up: the caller then
// runs the parts itself, and only waits for parts a worker has started. Workers spin for
// a short while after each job (a decoded token runs ~80 small jobs in a row), then sleep.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace rwkv {

// Whether this build can start threads (false in a wasm build without -pthread).
bool threads_supported();
// The number of hardware threads (1 when threads are not supported).
int hardware_threads();

class ThreadPool {
 public:
  // `threads` in total, the caller included; clamped to [1, 64], and to 1 when the build
  // has no thread support. Fewer when the system refuses to start more.
  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls f(i) once for every i in [0, parts), spread over the pool's threads, the caller
  // included, and returns when all calls have returned. One job at a time: not
  // reentrant, not for concurrent callers.
  template <typename F>
  void run(int parts, F&& f) {
    if (parts <= 0) return;
    if (workers_.empty() || parts == 1) {
      for (int i = 0; i < parts; ++i) f(i);
      return;
    }
    for (int base = 0; base < parts; base += kMaxParts) {  // (a job counts parts in 16 bits)
      const int n = parts - base < kMaxParts ? parts - base : kMaxParts;
      auto g = [&](int i) { f(base + i); };
      run_impl(n, [](void* ctx, int i) { (*static_cast<decltype(g)*>(ctx))(i); }, &g);
    }
  }

  // Splits [0, n) into contiguous parts whose bounds are multiples of `grain` (except n
  // itself), a few per thread, and calls f(begin, end) for each in parallel.
  template <typename F>
  void parallel_for(int n, int grain, F&& f) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int units = (n + grain - 1) / grain;
    int parts = kPartsPerThread * size();
    if (parts > units) parts = units;
    if (parts <= 1) return f(0, n);
    run(parts, [&](int i) {
      const int b = int(int64_t(units) * i / parts) * grain;
      int e = int(int64_t(units) * (i + 1) / parts) * grain;
      if (e > n) e = n;
      if (b < e) f(b, e);
    });
  }

  static constexpr int kPartsPerThread = 4;
  static constexpr int kMaxParts = 0xFFFF;

 private:
  void run_impl(int parts, void (*fn)(void*, int), void* ctx);
  // Claims the next part of job `gen`; false when it has none left (or is over).
  bool claim(uint32_t gen, int& part, int& parts);
  void finish_part(int parts);
  void worker_main();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;  // workers wait here for a new job
  std::condition_variable done_;  // the caller waits here for the last part
  // The job: generation (high 32 bits), part count (16 bits), next unclaimed part (16 bits).
  std::atomic<uint64_t> work_{0};
  std::atomic<int> finished_{0};  // parts of the current job that have returned
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;       // the caller's count of jobs
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace rwkv
