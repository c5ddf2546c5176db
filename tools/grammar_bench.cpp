// Speed of constrained decoding (docs/grammar.md): tokens/s of the generation loop with
// each grammar against the same loop without one, in one process, alternating the runs
// (so machine noise hits both alike); the ratio of the medians is what counts. Built
// natively and for wasm (single-thread, NODERAWFS); `node scripts/grammar-bench.mjs`
// runs both on the published 0.1B shape with the World vocabulary.
//   rwkv_grammar_bench MODEL VOCAB --grammar NAME=FILE [--grammar ...] [--tokens 48]
//                      [--rounds 5] [--threads 1] [--json]
// Each round decodes --tokens tokens per mode (a generation that ends early is followed
// by another, prompt prefill not timed); a grammar's setup (parsing it, building the
// vocabulary trie) is timed apart.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "text/generate.h"
#include "timing.h"

using namespace rwkv;
using namespace rwkv::timing;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Mode {
  Mode(std::string n, std::string g) : name(std::move(n)), grammar(std::move(g)) {}
  std::string name, grammar;  // grammar empty: unconstrained
  std::vector<double> tps, setup_ms;
  int ended = 0;  // generations that ended before their token budget
};

// Decodes `tokens` tokens with the mode's grammar; fills one sample of tps and setup.
void run(Mode& m, Runner& runner, const Tokenizer& tok, const std::vector<int32_t>& prompt, int tokens, uint64_t seed) {
  double decode_s = 0, setup_s = 0;
  int done_tokens = 0;
  for (int part = 0; done_tokens < tokens; ++part) {
    State state(runner.model().config());
    GenerateOptions o;
    o.max_tokens = tokens - done_tokens;
    o.sampler.seed = seed * 1000 + uint64_t(part);
    o.grammar = m.grammar;
    const auto t0 = Clock::now();
    Generator gen(runner, state, tok, prompt, o);
    setup_s += seconds_since(t0);
    while (gen.prefilling()) gen.next();
    const auto t1 = Clock::now();
    Generator::Piece p;
    do p = gen.next();
    while (!p.done);
    decode_s += seconds_since(t1);
    done_tokens += gen.generated();
    if (gen.generated() < o.max_tokens) ++m.ended;
    if (gen.generated() == 0) throw Error("grammar " + m.name + " ends before its first token: nothing to time");
  }
  m.tps.push_back(done_tokens / decode_s);
  m.setup_ms.push_back(setup_s * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) throw Error("usage: rwkv_grammar_bench MODEL VOCAB --grammar NAME=FILE [...] [--tokens N] [--rounds R] [--threads T] [--json]");
    const std::string model_path = argv[1], vocab_path = argv[2];
    std::vector<Mode> modes{Mode("none", "")};
    int tokens = 48, rounds = 5, threads = 1;
    bool json = false;
    for (int i = 3; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("missing value after " + a);
        return argv[++i];
      };
      if (a == "--json") {
        json = true;
      } else if (a == "--grammar") {
        const std::string v = value();
        const size_t eq = v.find('=');
        if (eq == std::string::npos) throw Error("--grammar takes NAME=FILE");
        modes.emplace_back(v.substr(0, eq), read_all(v.substr(eq + 1)));
      } else if (a == "--tokens") {
        tokens = std::stoi(value());
      } else if (a == "--rounds") {
        rounds = std::stoi(value());
      } else if (a == "--threads") {
        threads = std::stoi(value());
      } else {
        throw Error("unknown option " + a);
      }
    }
    const std::string file = read_all(model_path);
    Bytes bytes = Bytes::allocate(file.size());
    std::memcpy(bytes.data.get(), file.data(), file.size());
    auto model = Model::load(std::move(bytes));
    const Tokenizer tok = Tokenizer::from_vocab_text(read_all(vocab_path));
    Runner runner(*model);
    runner.set_threads(threads);
    const auto prompt = tok.encode("User: Describe three people as JSON.\n\nAssistant:");
    for (int r = 0; r < rounds; ++r)
      for (Mode& m : modes) {
        run(m, runner, tok, prompt, tokens, uint64_t(r + 1));
        if (!json) std::fprintf(stderr, "round %d %-12s %6.2f tokens/s\n", r + 1, m.name.c_str(), m.tps.back());
      }
    const double base = median(modes[0].tps);
    if (json) {
      std::printf("{\"threads\": %d, \"tokens\": %d, \"rounds\": %d, \"modes\": [", runner.threads(), tokens, rounds);
      for (size_t k = 0; k < modes.size(); ++k)
        std::printf("%s{\"name\": \"%s\", \"tokens_per_s\": %.3f, \"ratio\": %.4f, \"setup_ms\": %.2f, \"ended_early\": %d}",
                    k ? ", " : "", modes[k].name.c_str(), median(modes[k].tps), median(modes[k].tps) / base,
                    median(modes[k].setup_ms), modes[k].ended);
      std::printf("]}\n");
    } else {
      std::printf("%-12s %12s %8s %10s %12s\n", "grammar", "tokens/s", "ratio", "setup ms", "ended early");
      for (const Mode& m : modes)
        std::printf("%-12s %12.2f %8.3f %10.2f %12d\n", m.name.c_str(), median(m.tps), median(m.tps) / base, median(m.setup_ms), m.ended);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
