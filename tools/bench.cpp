// Speed of the core on one model file: decode (tokens/s, median of several runs), prefill
// of 128 tokens (or each length of a list), for 1 and 2 threads; this machine's memory read bandwidth (a large buffer
// summed with SIMD, 1 and 2 threads) measured in the same run, and the fraction of it a
// decoded token achieves; load time and peak memory. The file streams through the loader
// (tools/load_model.h), never held whole, so a model as large as the heap allows loads in
// wasm too; a precision the wasm32 heap cannot hold fails with an error before anything
// large is allocated. Built natively and for wasm (as a NODERAWFS main, single-thread and
// pthread variants).
//   rwkv_bench MODEL [--threads 1,2] [--decode-tokens 32] [--decode-runs 7]
//              [--prefill-tokens 128[,1024...]] [--prefill-runs 3] [--bandwidth-mb 512] [--chunk N]
//              [--quant keep|int8|q4|bf16|f32] [--json]
// --quant converts the matrices on load (LoadOptions), as the JS library's `quant` option.
// --chunk sets the Runner's max_chunk (tokens per prefill pass; default the Runner's own).
// --dump FILE writes the logits and state of a fixed run instead (first thread count).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/runner.h"
#include "kernels/simd.h"
#include "kernels/threads.h"
#include "load_model.h"
#include "timing.h"

#if !defined(__EMSCRIPTEN__)
#include <sys/resource.h>
#endif

using namespace rwkv;
using namespace rwkv::timing;

namespace {

// Peak resident memory natively; the wasm heap (memory size) under Emscripten.
double peak_memory_mb() {
#if defined(__EMSCRIPTEN__)
  return double(__builtin_wasm_memory_size(0)) * 65536.0 / 1048576.0;
#else
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
#endif
}

// Bytes of weights a decoded token reads: every matrix but the embedding (one row of it).
size_t decode_weight_bytes(const Model& m) {
  const Weights& w = m.weights();
  size_t n = w.head.bytes();
  for (const auto& L : w.layers)
    for (const Matrix* x : {&L.w1, &L.w2, &L.a1, &L.a2, &L.v1, &L.v2, &L.g1, &L.g2, &L.receptance, &L.key,
                            &L.value, &L.output, &L.ffn_key, &L.ffn_value})
      if (x->data) n += x->bytes();
  return n;
}

// Sums `n` floats with SIMD as `S` sequential streams (stream j reads the j-th of S equal
// slices). One stream is what a plain loop gets; several streams
// keep more of the hardware prefetchers busy and show what the memory can deliver.
template <int S>
float sum_floats(const float* p, size_t n) {
  using namespace simd;
  const size_t q = n / S / (2 * kLanes) * (2 * kLanes);
  vf a[S];  // one running sum per stream (few enough registers for wasm on x86 too)
  for (int s = 0; s < S; ++s) a[s] = splat(0);
  for (size_t i = 0; i < q; i += 2 * kLanes)
    for (int s = 0; s < S; ++s) a[s] = add(a[s], add(load(p + s * q + i), load(p + s * q + i + kLanes)));
  vf t = splat(0);
  for (int s = 0; s < S; ++s) t = add(t, a[s]);
  float sum = hsum(t);
  for (size_t i = S * q; i < n; ++i) sum += p[i];
  return sum;
}

// Read bandwidth in GB/s (1e9 bytes): the best of `reps` passes over the buffer, split
// over the pool's threads, each reading its share as S streams.
template <int S>
double read_bandwidth(const std::vector<float>& buf, ThreadPool& pool, int reps) {
  double best = 0;
  std::vector<float> sums(size_t(pool.size()) * 16);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    const size_t n = buf.size(), parts = size_t(pool.size());
    pool.run(pool.size(), [&](int i) {
      const size_t b = n * size_t(i) / parts / 64 * 64, e = size_t(i) + 1 == parts ? n : n * (size_t(i) + 1) / parts / 64 * 64;
      sums[size_t(i) * 16] += sum_floats<S>(buf.data() + b, e - b);
    });
    const double s = seconds_since(t0);
    best = std::max(best, double(n) * sizeof(float) / s / 1e9);
  }
  if (sums[0] == 12345.0f) std::printf(" ");  // keep the sums alive
  return best;
}

struct Result {
  int threads = 1;
  double decode_tps = 0, decode_min = 0, decode_max = 0;
  std::vector<double> prefill_tps;  // per prefill length
  double bandwidth_gbs = 0;          // the best of 1 and 8 streams per thread
  double bandwidth_1stream_gbs = 0;  // one sequential stream per thread
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  for (size_t p = 0; p < s.size();) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    out.push_back(std::stoi(s.substr(p, q - p)));
    p = q + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr,
                   "usage: rwkv_bench MODEL [--threads 1,2] [--decode-tokens 32] [--decode-runs 7]\n"
                   "                  [--prefill-tokens 128,1024] [--prefill-runs 3] [--bandwidth-mb 512] [--chunk N] [--dump FILE] [--json]\n");
      return 2;
    }
    std::string path = argv[1];
    std::vector<int> thread_counts = {1, 2};
    int decode_tokens = 32, decode_runs = 7, prefill_runs = 3, bandwidth_mb = 512, chunk = 0;
    std::vector<int> prefill_lengths = {128};
    std::string dump;
    LoadOptions options;
    bool json = false;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--json") {
        json = true;
        continue;
      }
      if (i + 1 >= argc) throw Error("missing value after " + a);
      const std::string v = argv[++i];
      if (a == "--threads") thread_counts = parse_list(v);
      else if (a == "--decode-tokens") decode_tokens = std::stoi(v);
      else if (a == "--decode-runs") decode_runs = std::stoi(v);
      else if (a == "--prefill-tokens") prefill_lengths = parse_list(v);
      else if (a == "--prefill-runs") prefill_runs = std::stoi(v);
      else if (a == "--bandwidth-mb") bandwidth_mb = std::stoi(v);
      else if (a == "--chunk") chunk = std::stoi(v);
      else if (a == "--dump") dump = v;
      else if (a == "--quant") {
        if (v == "int8" || v == "q8_0") options.matrices = DType::Q8_0;
        else if (v == "q4" || v == "q4_0") options.matrices = DType::Q4_0;
        else if (v == "bf16") options.matrices = DType::BF16;
        else if (v == "f32") options.matrices = DType::F32;
        else if (v != "keep") throw Error("--quant: unknown type " + v);
      }
      else throw Error("unknown option " + a);
    }

    const auto t_load = Clock::now();
    tools::LoadedFile loaded = tools::load_model_file(path, options);
    const double load_s = seconds_since(t_load);
    const double load_peak_mb = peak_memory_mb();  // wasm: the heap once loaded
    const std::unique_ptr<Model> model = std::move(loaded.model);
    const Config& c = model->config();
    const size_t weight_bytes = decode_weight_bytes(*model);
    Runner runner = chunk > 0 ? Runner(*model, chunk) : Runner(*model);

    const int prefill_max = *std::max_element(prefill_lengths.begin(), prefill_lengths.end());
    std::vector<int32_t> prompt(size_t(std::max(prefill_max, 70)));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % size_t(c.V));

    if (!dump.empty()) {
      // Logits of a fixed run (a prefill of 70 tokens, every row, then 4 steps) with the
      // first thread count, as raw float32: builds and thread counts must give the same bytes.
      runner.set_threads(thread_counts.empty() ? 1 : thread_counts[0]);
      State state(c);
      std::vector<float> out(size_t(74) * c.V);
      runner.prefill(state, std::span<const int32_t>(prompt.data(), std::min<size_t>(70, prompt.size())), out.data());
      for (int i = 0; i < 4; ++i) {
        auto l = runner.step(state, int32_t((i * 101 + 5) % c.V));
        std::copy(l.begin(), l.end(), out.begin() + (70 + i) * size_t(c.V));
      }
      FILE* f = std::fopen(dump.c_str(), "wb");
      if (!f) throw Error("cannot write " + dump);
      std::fwrite(out.data(), sizeof(float), out.size(), f);
      std::fwrite(state.data(), sizeof(float), state.size(), f);
      std::fclose(f);
      std::printf("wrote %s (%d threads)\n", dump.c_str(), runner.threads());
      return 0;
    }

    std::vector<Result> results;
    for (int nt : thread_counts) {
      Result res;
      runner.set_threads(nt);
      res.threads = runner.threads();
      if (!json) std::fprintf(stderr, "threads %d: decode...\n", res.threads);
      State state(c);
      int32_t tok = 1;
      for (int i = 0; i < 4; ++i) runner.step(state, tok = (tok * 31 + 7) % c.V);  // warm up
      std::vector<double> tps;
      for (int r = 0; r < decode_runs; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < decode_tokens; ++i) {
          auto l = runner.step(state, tok);
          tok = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        }
        tps.push_back(decode_tokens / seconds_since(t0));
      }
      res.decode_tps = median(tps);
      if (!tps.empty()) {
        res.decode_min = *std::min_element(tps.begin(), tps.end());
        res.decode_max = *std::max_element(tps.begin(), tps.end());
      }
      if (!json) std::fprintf(stderr, "threads %d: prefill...\n", res.threads);
      for (int n : prefill_lengths) {
        std::vector<double> ptps;
        for (int r = 0; r < prefill_runs; ++r) {
          state.reset();
          const auto t0 = Clock::now();
          runner.prefill(state, std::span<const int32_t>(prompt.data(), size_t(n)));
          ptps.push_back(n / seconds_since(t0));
        }
        res.prefill_tps.push_back(median(ptps));
      }
      results.push_back(res);
    }
    const double peak_mb = peak_memory_mb();

    // Bandwidth last, so that its buffer does not count in the peak memory above.
    if (bandwidth_mb > 0) {
      std::vector<float> buf(size_t(bandwidth_mb) * 1048576 / sizeof(float), 1.0f);
      for (auto& res : results) {
        ThreadPool pool(res.threads);
        res.bandwidth_1stream_gbs = read_bandwidth<1>(buf, pool, 5);
        res.bandwidth_gbs = std::max(res.bandwidth_1stream_gbs, read_bandwidth<8>(buf, pool, 5));
      }
    }

    const char* build =
#if defined(__EMSCRIPTEN__)
        threads_supported() ? "wasm-mt" : "wasm";
#else
        "native";
#endif
    // A list of numbers as JSON ("[128,1024]") or text ("128/1024").
    auto list = [](const auto& xs, const char* sep, const char* fmt) {
      std::string out;
      char buf[32];
      for (size_t i = 0; i < xs.size(); ++i) {
        std::snprintf(buf, sizeof buf, fmt, double(xs[i]));
        out += (i ? sep : "") + std::string(buf);
      }
      return out;
    };
    if (json) {
      std::printf("{\"build\":\"%s\",\"simd\":\"%s\",\"model\":\"%s\",\"n_layer\":%d,\"n_embd\":%d,\"vocab\":%d,"
                  "\"weight_dtype\":\"%s\",\"load_s\":%.3f,\"decode_weight_bytes\":%zu,\"peak_memory_mb\":%.1f,"
                  "\"load_peak_memory_mb\":%.1f,\"loader_peak_mb\":%.1f,\"file_bytes\":%llu,\"model_bytes\":%zu,\"model_memory_mb\":%.1f,\"decode_tokens\":%d,\"prefill_tokens\":[%s],\"results\":[",
                  build, kernels::simd_name(), path.c_str(), c.n_layer, c.C, c.V, dtype_name(model->weight_dtype()),
                  load_s, weight_bytes, peak_mb, load_peak_mb, double(loaded.peak_bytes) / 1048576.0,
                  (unsigned long long)loaded.file_bytes, model->memory_bytes(), double(model->memory_bytes()) / 1048576.0, decode_tokens,
                  list(prefill_lengths, ",", "%.0f").c_str());
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        const double gbs = r.decode_tps * double(weight_bytes) / 1e9;
        std::printf("%s{\"threads\":%d,\"decode_tps\":%.3f,\"decode_tps_min\":%.3f,\"decode_tps_max\":%.3f,"
                    "\"prefill_tps\":[%s],\"decode_read_gbs\":%.3f,\"bandwidth_gbs\":%.3f,\"bandwidth_1stream_gbs\":%.3f,"
                    "\"bandwidth_fraction\":%.4f}",
                    i ? "," : "", r.threads, r.decode_tps, r.decode_min, r.decode_max, list(r.prefill_tps, ",", "%.3f").c_str(),
                    gbs, r.bandwidth_gbs, r.bandwidth_1stream_gbs, r.bandwidth_gbs > 0 ? gbs / r.bandwidth_gbs : 0.0);
      }
      std::printf("]}\n");
    } else {
      std::printf("%s (%s), %s: L%d C%d V%d %s, loaded in %.2f s\n", build, kernels::simd_name(), path.c_str(),
                  c.n_layer, c.C, c.V, dtype_name(model->weight_dtype()), load_s);
      std::printf("weights read per decoded token: %.1f MB; peak memory %.0f MB (%.0f MB once loaded; model %.0f MB, file %.0f MB)\n",
                  double(weight_bytes) / 1e6, peak_mb, load_peak_mb, double(model->memory_bytes()) / 1048576.0,
                  double(loaded.file_bytes) / 1048576.0);
      std::printf("threads  decode tok/s (min-max)     prefill %s tok/s  decode GB/s  bandwidth GB/s (1 stream)  fraction\n",
                  list(prefill_lengths, "/", "%.0f").c_str());
      for (const Result& r : results) {
        const double gbs = r.decode_tps * double(weight_bytes) / 1e9;
        std::printf("%7d  %7.2f (%6.2f-%6.2f)  %15s  %11.2f  %14.2f (%8.2f)  %7.0f%%\n", r.threads, r.decode_tps,
                    r.decode_min, r.decode_max, list(r.prefill_tps, "/", "%.1f").c_str(), gbs, r.bandwidth_gbs,
                    r.bandwidth_1stream_gbs, r.bandwidth_gbs > 0 ? 100 * gbs / r.bandwidth_gbs : 0.0);
      }
    }
    return 0;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory%s\n",
#if defined(__EMSCRIPTEN__)
                 ": the wasm heap cannot grow any further (a wasm32 heap holds 4 GB)"
#else
                 ""
#endif
    );
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
