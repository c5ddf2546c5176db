// What the per-token trace (docs/inspect.md) costs: decode and prefill of one model file
// without a trace and with one, measured in the same run, alternating (off, on, off, on...)
// so that a busy machine disturbs both alike; medians and the ratio on / off, of wall-clock
// tokens/s and of tokens per CPU second (the process's CPU time: with one thread, what a busy
// machine disturbs least). Without a trace the Runner only checks a null pointer (per chunk
// and per layer).
//   rwkv_trace_bench MODEL [--threads 1] [--decode-tokens 32] [--prefill-tokens 128] [--runs 9]
#include <cstdio>
#include <ctime>
#include <cstring>
#include <string>
#include <vector>

#include "model/runner.h"
#include "load_model.h"
#include "timing.h"

using namespace rwkv;
using namespace rwkv::timing;

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: rwkv_trace_bench MODEL [--threads 1] [--decode-tokens 32] [--prefill-tokens 128] [--runs 9]\n");
      return 2;
    }
    int threads = 1, decode_tokens = 32, prefill_tokens = 128, runs = 9;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (i + 1 >= argc) throw Error("missing value after " + a);
      const int v = std::stoi(argv[++i]);
      if (a == "--threads") threads = v;
      else if (a == "--decode-tokens") decode_tokens = v;
      else if (a == "--prefill-tokens") prefill_tokens = v;
      else if (a == "--runs") runs = v;
      else throw Error("unknown option " + a);
    }
    const std::unique_ptr<Model> model = tools::load_model_file(argv[1], {}).model;
    const Config& c = model->config();
    Runner runner(*model);
    runner.set_threads(threads);
    Trace trace(c);
    std::vector<int32_t> prompt(size_t(std::max(prefill_tokens, 1)));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % size_t(c.V));

    // Tokens per wall-clock second and per CPU second of `decode_tokens` steps or of one
    // prefill, with or without the trace.
    struct Speed {
      std::vector<double> wall, cpu;
    };
    State state(c);
    int32_t tok = 1;
    auto timed = [&](Speed& out, Trace* t, int tokens, auto&& work) {
      runner.set_trace(t);
      trace.clear();
      const std::clock_t c0 = std::clock();
      const auto t0 = Clock::now();
      work();
      out.wall.push_back(tokens / seconds_since(t0));
      out.cpu.push_back(tokens / (double(std::clock() - c0) / CLOCKS_PER_SEC));
    };
    auto decode = [&] {
      for (int i = 0; i < decode_tokens; ++i) {
        auto l = runner.step(state, tok);
        tok = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
      }
    };
    auto prefill = [&] {
      state.reset();
      runner.prefill(state, prompt);
    };
    Speed warm, d_off, d_on, p_off, p_on;
    timed(warm, nullptr, decode_tokens, decode);
    timed(warm, &trace, decode_tokens, decode);
    for (int r = 0; r < runs; ++r) {
      timed(d_off, nullptr, decode_tokens, decode);
      timed(d_on, &trace, decode_tokens, decode);
      timed(p_off, nullptr, prefill_tokens, prefill);
      timed(p_on, &trace, prefill_tokens, prefill);
    }
    std::printf("%s: L%d C%d H%d, %d thread(s), %d runs alternating, medians\n", argv[1], c.n_layer, c.C, c.H,
                runner.threads(), runs);
    std::printf("                          trace off    trace on   on/off\n");
    auto row = [](const char* name, const std::vector<double>& off, const std::vector<double>& on) {
      std::printf("%-24s %10.2f  %10.2f   %6.3f\n", name, median(off), median(on), median(on) / median(off));
    };
    row("decode tok/s", d_off.wall, d_on.wall);
    row("decode tok/CPU-s", d_off.cpu, d_on.cpu);
    row("prefill tok/s", p_off.wall, p_on.wall);
    row("prefill tok/CPU-s", p_off.cpu, p_on.cpu);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
