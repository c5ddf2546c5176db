#pragma once
// A model file loaded through the streaming loader (model/loader.h), as the library loads
// one: read in chunks straight into the loader's window, so that memory while loading is
// the model plus the loader's input buffer and one tensor, never the file (a 2.9B .pth is
// 5.9 GB; a wasm32 heap holds 4 GB). Used by the benchmark programs (tools/bench.cpp,
// tools/trace_bench.cpp) and tested against Model::load (tests/test_loader.cpp).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "base/error.h"
#include "model/loader.h"

namespace rwkv::tools {

// The most a model may take where none is given: a wasm32 heap (4 GB) less 16 MB for the
// runtime, as the library's (js/engine.mjs); no limit natively.
#if defined(__EMSCRIPTEN__)
inline constexpr uint64_t kDefaultMaxModelBytes = (uint64_t(1) << 32) - (uint64_t(1) << 24);
#else
inline constexpr uint64_t kDefaultMaxModelBytes = 0;
#endif

struct LoadedFile {
  std::unique_ptr<Model> model;
  uint64_t file_bytes = 0;  // read from the file
  size_t peak_bytes = 0;    // the most the loader held at once (its own count)
};

// Loads `path` with `options`, reading at most `chunk` bytes at a time. Throws rwkv::Error
// when the file cannot be read or loaded, or when the model would take more than
// `max_bytes` (0: no limit) in the precision asked for, before anything large is allocated.
inline LoadedFile load_model_file(const std::string& path, const LoadOptions& options,
                                  uint64_t max_bytes = kDefaultMaxModelBytes,
                                  size_t chunk = StreamLoader::kInputBytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error("cannot open " + path);
  StreamLoader loader;
  LoadedFile out;
  auto start = [&] {
    const uint64_t need = loader.plan().bytes(options.matrices);
    const char* as = options.matrices ? dtype_name(*options.matrices) : "stored";
    if (max_bytes > 0 && need > max_bytes)
      throw Error(path + ": the model takes " + std::to_string(need >> 20) + " MB as " + as + ", more than the " +
                  std::to_string(max_bytes >> 20) + " MB it may take here (a wasm32 heap holds 4 GB); choose a smaller quant");
    loader.start(options);
  };
  for (;;) {
    if (loader.planned() && !loader.started()) start();
    const std::span<uint8_t> w = loader.window();
    if (w.empty()) throw Error(path + ": the loader takes no more bytes before the end of the file");
    const size_t n = std::fread(w.data(), 1, std::min(w.size(), std::max<size_t>(chunk, 1)), f.get());
    if (n == 0) {
      if (std::ferror(f.get())) throw Error("cannot read " + path);
      break;
    }
    loader.commit(n);
    out.file_bytes += n;
  }
  if (loader.planned() && !loader.started()) start();
  out.model = loader.finish();
  out.peak_bytes = loader.peak_bytes();
  return out;
}

}  // namespace rwkv::tools
