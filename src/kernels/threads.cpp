#include "kernels/threads.h"

#include <chrono>
#include <system_error>

namespace rwkv {

namespace {

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
constexpr bool kThreads = false;
#else
constexpr bool kThreads = true;
#endif

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a worker (or the caller) spins before it sleeps: longer than the gaps between
// the parallel sections of one decoded token, short enough not to hog a core for long.
constexpr auto kSpin = std::chrono::microseconds(500);

// Spins until done() holds or kSpin has passed; returns done().
template <typename P>
bool spin_until(P done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() > until) return done();
  }
}

constexpr uint32_t gen_of(uint64_t w) { return uint32_t(w >> 32); }
constexpr int parts_of(uint64_t w) { return int((w >> 16) & 0xFFFF); }
constexpr int next_of(uint64_t w) { return int(w & 0xFFFF); }

}  // namespace

bool threads_supported() { return kThreads; }

int hardware_threads() {
  if (!kThreads) return 1;
  const unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

ThreadPool::ThreadPool(int threads) {
  if (threads > 64) threads = 64;
  if (!kThreads || threads < 1) threads = 1;
  workers_.reserve(size_t(threads - 1));
  for (int i = 1; i < threads; ++i) {
    try {
      workers_.emplace_back([this] { worker_main(); });
    } catch (const std::system_error&) {
      break;  // no more threads to be had (e.g. a wasm pthread pool used up): run with fewer
    }
  }
}

ThreadPool::~ThreadPool() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::claim(uint32_t gen, int& part, int& parts) {
  uint64_t w = work_.load(std::memory_order_acquire);
  for (;;) {
    if (gen_of(w) != gen || next_of(w) >= parts_of(w)) return false;
    if (work_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      part = next_of(w);
      parts = parts_of(w);
      return true;
    }
  }
}

void ThreadPool::finish_part(int parts) {
  if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == parts) {
    std::lock_guard<std::mutex> lock(mutex_);  // the caller checks `finished_` under this lock
    done_.notify_one();
  }
}

void ThreadPool::run_impl(int parts, void (*fn)(void*, int), void* ctx) {
  fn_ = fn;
  ctx_ = ctx;
  finished_.store(0, std::memory_order_relaxed);
  const uint32_t gen = ++generation_;
  work_.store((uint64_t(gen) << 32) | (uint64_t(parts) << 16), std::memory_order_release);
  { std::lock_guard<std::mutex> lock(mutex_); }  // a worker about to sleep sees the job or the notify
  wake_.notify_all();
  int part, n;
  while (claim(gen, part, n)) {
    fn(ctx, part);
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
  auto all_done = [&] { return finished_.load(std::memory_order_acquire) == parts; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, all_done);
  }
}

void ThreadPool::worker_main() {
  uint32_t seen = 0;
  for (;;) {
    auto fresh = [&] {
      return gen_of(work_.load(std::memory_order_acquire)) != seen || stop_.load(std::memory_order_acquire);
    };
    if (!spin_until(fresh)) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, fresh);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen_of(work_.load(std::memory_order_acquire));
    // The job stays alive while a part of it is claimed and unfinished, so fn_ and ctx_
    // (written before the job was published) can be read after a claim.
    int part, parts;
    while (claim(seen, part, parts)) {
      fn_(ctx_, part);
      finish_part(parts);
    }
  }
}

}  // namespace rwkv
