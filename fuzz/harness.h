#pragma once
// Shared by the fuzz_<name>.cpp harnesses. A harness calls one parser on the fuzzer's
// bytes inside fuzz_run(): rwkv::Error is the expected answer to bad input and is
// swallowed; anything else (another exception, a sanitizer report, a failed
// FUZZ_CHECK) crashes the process, which libFuzzer records as a finding.
//
// Lines of the form `// FUZZ_<KEY> value...` at the top of a harness are read by
// fuzz/prepare.mjs (see fuzz/README.md): FUZZ_MAX_LEN, FUZZ_DICTS, FUZZ_SEEDS.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

// Aborts (a crash for libFuzzer) when an invariant the parsers promise does not hold.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// Keeps reads from being optimised away, so ASan sees every byte a harness touches.
inline void fuzz_consume(uint64_t v) {
  static volatile uint64_t sink;
  sink = sink + v;
}

// Reads `n` bytes at p (ASan checks each one) and folds them into the sink.
inline void fuzz_touch(const void* p, size_t n) {
  uint64_t v = 0;
  const auto* b = static_cast<const volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) v = v * 131 + b[i];
  fuzz_consume(v);
}

// True when [p, p + n) lies inside [base, base + size).
inline bool fuzz_within(const void* p, uint64_t n, const uint8_t* base, size_t size) {
  const auto a = reinterpret_cast<uintptr_t>(p), lo = reinterpret_cast<uintptr_t>(base);
  return a >= lo && a - lo <= size && n <= size - (a - lo);
}

template <typename Fn>
int fuzz_run(Fn&& fn) {
  try {
    fn();
  } catch (const rwkv::Error&) {
    // a clean refusal: what hostile input should get
  }
  return 0;
}
