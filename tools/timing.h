#pragma once
// Timing helpers shared by the benchmark programs (tools/bench.cpp, tools/grammar_bench.cpp,
// tools/trace_bench.cpp).
#include <algorithm>
#include <chrono>
#include <vector>

namespace rwkv::timing {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The median (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace rwkv::timing
