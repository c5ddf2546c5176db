#pragma once
// A model file read whole, for the benchmark programs (tools/bench.cpp, tools/trace_bench.cpp),
// which time Model::load on the bytes.
#include <cstdio>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace rwkv::tools {

inline Bytes read_model(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open " + path);
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  Bytes b = Bytes::allocate(size_t(size));
  size_t got = 0;
  while (got < size_t(size)) {
    const size_t n = std::fread(b.data.get() + got, 1, size_t(size) - got, f);
    if (n == 0) break;
    got += n;
  }
  std::fclose(f);
  if (got != size_t(size)) throw Error("short read on " + path);
  return b;
}

}  // namespace rwkv::tools
