// Embind bindings: the only file that knows about JavaScript. Few exports, bulk data:
// model bytes are written by JS straight into the wasm heap and handed over by pointer;
// logits and states come back as typed-array views of wasm memory (no copies), valid
// until the next call that may grow the heap.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include "generate.h"
#include "rwkv.h"
#include "state_file.h"

using emscripten::val;
using namespace rwkv;

namespace {

// Runs fn, turning C++ failures into JS exceptions with the core's message.
// name: "RwkvError" for a reported problem, "OutOfMemory" when allocation failed.
template <typename Fn>
auto guard(Fn&& fn) -> decltype(fn()) {
  auto raise = [](const char* name, const std::string& msg) {
    val err = val::global("Error").new_(val(msg));
    err.set("name", val(name));
    err.throw_();
  };
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    raise("OutOfMemory", "out of memory: the wasm heap cannot grow any further");
  } catch (const std::exception& e) {
    raise("RwkvError", e.what());
  }
  __builtin_unreachable();
}

// Bytes as a JS string. Embind reads std::string as UTF-8 and misreads invalid
// sequences (it may even look past the end), so tokens that split a character or are not
// UTF-8 at all get U+FFFD for each byte that does not start a valid character.
val js_text(std::string_view b) {
  std::string out;
  out.reserve(b.size());
  for (size_t i = 0; i < b.size();) {
    const uint8_t c = uint8_t(b[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= b.size() && !(n == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < n; ++k) ok = (uint8_t(b[i + k]) & 0xC0) == 0x80;
    if (ok && n >= 3) {  // no overlong forms, no surrogates, nothing past U+10FFFF
      const uint8_t d = uint8_t(b[i + 1]);
      ok = n == 3 ? !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0)
                  : !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90) && c <= 0xF4;
    }
    if (ok) {
      out.append(b.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return val(out);
}

std::vector<int32_t> tokens_from(const val& tokens) {
  return emscripten::convertJSArrayToNumberVector<int32_t>(tokens);
}

// Reads a JS options object ({temperature, topP, ...} as in js/rwkv.d.ts); absent
// fields keep the core's defaults. Range checks happen in the core.
SamplerOptions sampler_options(const val& o) {
  SamplerOptions s;
  if (o.isUndefined() || o.isNull()) return s;
  auto num = [&](const char* key, auto& field) {
    const val v = o[key];
    if (v.isNumber()) field = static_cast<std::remove_reference_t<decltype(field)>>(v.as<double>());
    else if (!v.isUndefined() && !v.isNull()) throw Error(std::string("option ") + key + " must be a number");
  };
  num("temperature", s.temperature);
  num("topP", s.top_p);
  num("topK", s.top_k);
  num("minP", s.min_p);
  num("presencePenalty", s.presence_penalty);
  num("frequencyPenalty", s.frequency_penalty);
  num("penaltyDecay", s.penalty_decay);
  const val seed = o["seed"];
  if (seed.isNumber()) s.seed = uint64_t(int64_t(seed.as<double>()));
  const val bias = o["logitBias"];
  if (!bias.isUndefined() && !bias.isNull()) {
    const val keys = val::global("Object").call<val>("keys", bias);
    const int n = keys["length"].as<int>();
    for (int i = 0; i < n; ++i) {
      const std::string k = keys[i].as<std::string>();
      s.logit_bias.emplace_back(int32_t(std::stol(k)), bias[k].as<float>());
    }
  }
  const val banned = o["bannedTokens"];
  if (!banned.isUndefined() && !banned.isNull()) s.banned = emscripten::convertJSArrayToNumberVector<int32_t>(banned);
  return s;
}

GenerateOptions generate_options(const val& o) {
  GenerateOptions g;
  g.sampler = sampler_options(o);
  if (o.isUndefined() || o.isNull()) return g;
  const val max = o["maxTokens"];
  if (max.isNumber()) {
    const double m = max.as<double>();
    if (!(m >= 0) || m > 1e9) throw Error("maxTokens must be between 0 and 1e9, not " + std::to_string(m));
    g.max_tokens = int(m);
  }
  const val stops = o["stop"];
  if (!stops.isUndefined() && !stops.isNull()) {
    const int n = stops["length"].as<int>();
    for (int i = 0; i < n; ++i) g.stop_strings.push_back(stops[i].as<std::string>());
  }
  const val ids = o["stopTokens"];
  if (!ids.isUndefined() && !ids.isNull()) g.stop_tokens = emscripten::convertJSArrayToNumberVector<int32_t>(ids);
  return g;
}

class WasmTokenizer {
 public:
  static WasmTokenizer* fromVocab(const std::string& text) {
    return guard([&] { return new WasmTokenizer(Tokenizer::from_vocab_text(text)); });
  }
  static WasmTokenizer* byteLevel() { return new WasmTokenizer(Tokenizer::byte_level()); }
  // Text (a JS string, UTF-8 encoded by Embind) to token ids: a fresh Int32Array.
  val encode(const std::string& text) const {
    return guard([&] {
      const auto ids = tok.encode(text);
      return val::global("Int32Array").new_(val(emscripten::typed_memory_view(ids.size(), ids.data())));
    });
  }
  // Token ids to text (see js_text for bytes that are not UTF-8).
  val decode(const val& ids) const {
    return guard([&] { return js_text(tok.decode(emscripten::convertJSArrayToNumberVector<int32_t>(ids))); });
  }
  size_t vocabSize() const { return tok.vocab_size(); }
  explicit WasmTokenizer(Tokenizer t) : tok(std::move(t)) {}
  Tokenizer tok;
};

class WasmState {
 public:
  explicit WasmState(const Config& c) : state(c) {}
  val data() { return val(emscripten::typed_memory_view(state.size(), state.data())); }
  size_t size() const { return state.size(); }
  void reset() { state.reset(); }
  void copyFrom(const WasmState& other) {
    guard([&] {
      if (other.state.size() != state.size()) throw Error("cannot copy a state of another model shape");
      std::copy_n(other.state.data(), state.size(), state.data());
    });
  }
  State state;
};

class WasmGenerator;

class WasmModel {
 public:
  // Takes ownership of `size` bytes at `ptr`, allocated with _malloc, whatever happens.
  static WasmModel* fromHeap(uintptr_t ptr, size_t size) {
    Bytes bytes = Bytes::adopt(reinterpret_cast<uint8_t*>(ptr), size);
    return guard([&] { return new WasmModel(Model::load(std::move(bytes))); });
  }

  val config() const {
    const Config& c = model_->config();
    val o = val::object();
    o.set("nLayer", c.n_layer);
    o.set("nEmbd", c.C);
    o.set("nHead", c.H);
    o.set("headSize", c.N);
    o.set("ffnSize", c.F);
    o.set("vocabSize", c.V);
    o.set("loraW", c.Dw);
    o.set("loraA", c.Da);
    o.set("loraV", c.Dv);
    o.set("loraG", c.Dg);
    o.set("stateSize", double(c.state_size()));
    o.set("dtype", std::string(dtype_name(model_->weight_dtype())));
    o.set("memoryBytes", double(model_->memory_bytes()));
    return o;
  }

  WasmState* newState() const { return guard([&] { return new WasmState(model_->config()); }); }

  val step(WasmState& s, int32_t token) {
    return guard([&] { return view(runner_.step(s.state, token)); });
  }
  val prefill(WasmState& s, const val& tokens) {
    return guard([&] { return view(runner_.prefill(s.state, tokens_from(tokens))); });
  }
  // Sets `s` from a state-tuning file (blocks.N.att.time_state) given as bytes.
  void loadStateFile(WasmState& s, const std::string& bytes) {
    guard([&] { load_state_file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), s.state); });
  }
  // A generation on state `s`; see Generator. The model, state and tokenizer must stay
  // alive while it exists.
  WasmGenerator* generator(WasmState& s, const WasmTokenizer& tok, const val& prompt, const val& options);

  // Logits after every token: a (T, V) view, valid until the next call.
  val prefillAll(WasmState& s, const val& tokens) {
    return guard([&] {
      const auto t = tokens_from(tokens);
      all_.assign(t.size() * size_t(model_->config().V), 0.0f);
      runner_.prefill(s.state, t, all_.data());
      return val(emscripten::typed_memory_view(all_.size(), all_.data()));
    });
  }

 private:
  explicit WasmModel(std::unique_ptr<Model> m) : model_(std::move(m)), runner_(*model_) {}
  static val view(std::span<const float> s) { return val(emscripten::typed_memory_view(s.size(), s.data())); }
  std::unique_ptr<Model> model_;
  Runner runner_;
  friend class WasmGenerator;
  std::vector<float> all_;
};

class WasmGenerator {
 public:
  WasmGenerator(WasmModel& m, WasmState& s, const WasmTokenizer& t, std::vector<int32_t> prompt, GenerateOptions o)
      : gen(m.runner_, s.state, t.tok, std::move(prompt), std::move(o)) {}
  // One token: {text, token, done, reason}.
  val next() {
    return guard([&] {
      Generator::Piece p = gen.next();
      val o = val::object();
      o.set("text", js_text(p.text));
      o.set("token", p.token);
      o.set("done", p.done);
      o.set("reason", std::string(p.done ? stop_reason_name(p.reason) : ""));
      return o;
    });
  }
  val finish() { return js_text(gen.finish()); }
  Generator gen;
};

WasmGenerator* WasmModel::generator(WasmState& s, const WasmTokenizer& tok, const val& prompt, const val& options) {
  return guard([&] {
    return new WasmGenerator(*this, s, tok, emscripten::convertJSArrayToNumberVector<int32_t>(prompt),
                             generate_options(options));
  });
}

// One draw from logits with the given options (a fresh sampler: no penalty history).
int32_t sample_once(const val& logits, const val& options) {
  return guard([&] {
    auto l = emscripten::convertJSArrayToNumberVector<float>(logits);
    Sampler sampler(sampler_options(options), l.size());
    return sampler.sample(l);
  });
}

}  // namespace

EMSCRIPTEN_BINDINGS(rwkv) {
  using namespace emscripten;
  function("simd", +[]() { return std::string(kernels::simd_name()); });
  function("sampleOnce", &sample_once);
  class_<WasmTokenizer>("Tokenizer")
      .class_function("fromVocab", &WasmTokenizer::fromVocab, allow_raw_pointers())
      .class_function("byteLevel", &WasmTokenizer::byteLevel, allow_raw_pointers())
      .function("encode", &WasmTokenizer::encode)
      .function("decode", &WasmTokenizer::decode)
      .function("vocabSize", &WasmTokenizer::vocabSize);
  class_<WasmGenerator>("Generator")
      .function("next", &WasmGenerator::next)
      .function("finish", &WasmGenerator::finish);
  class_<WasmState>("State")
      .function("data", &WasmState::data)
      .function("size", &WasmState::size)
      .function("reset", &WasmState::reset)
      .function("copyFrom", &WasmState::copyFrom);
  class_<WasmModel>("Model")
      .class_function("fromHeap", &WasmModel::fromHeap, allow_raw_pointers())
      .function("config", &WasmModel::config)
      .function("newState", &WasmModel::newState, allow_raw_pointers())
      .function("step", &WasmModel::step)
      .function("prefill", &WasmModel::prefill)
      .function("prefillAll", &WasmModel::prefillAll)
      .function("loadStateFile", &WasmModel::loadStateFile)
      .function("generator", &WasmModel::generator, allow_raw_pointers());
}
