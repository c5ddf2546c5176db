#pragma once
// Shared helpers for the Catch2 suites: where the reference data lives, file reading.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#ifndef RWKV_REFERENCE_DIR
#define RWKV_REFERENCE_DIR "../shared/reference"
#endif
#ifndef RWKV_FIXTURE_DIR
#define RWKV_FIXTURE_DIR "build/fixtures"
#endif

// ../shared/reference (golden runs, models, vocabulary: docs/computation.md#golden-runs);
// RWKV_REFERENCE_DIR in the environment overrides the path compiled in.
inline const char* reference_dir() {
  const char* env = std::getenv("RWKV_REFERENCE_DIR");
  return env && *env ? env : RWKV_REFERENCE_DIR;
}

// The project's own fixtures, written by scripts/make-fixtures.mjs at build time.
inline const char* fixture_dir() {
  const char* env = std::getenv("RWKV_FIXTURE_DIR");
  return env && *env ? env : RWKV_FIXTURE_DIR;
}

// A file of the project's fixtures, by name.
inline std::string fixture(const std::string& name) { return std::string(fixture_dir()) + "/" + name; }

// The whole file, or nothing when it cannot be opened.
inline std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline std::vector<float> read_f32(const std::string& path) {
  std::vector<float> out;
  if (auto s = read_file(path)) {
    out.resize(s->size() / 4);
    std::memcpy(out.data(), s->data(), out.size() * 4);
  }
  return out;
}
