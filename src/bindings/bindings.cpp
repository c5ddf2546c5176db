// Embind bindings: the only file that knows about JavaScript. Few exports, bulk data:
// model bytes are written by JS straight into the wasm heap, chunk by chunk, where the
// streaming loader asks for them (Loader.window);
// logits and states come back as typed-array views of wasm memory (no copies), valid
// until the next call that may grow the heap.
//
// Errors: a JS exception unwinding through an Embind call skips the clean-up of its
// arguments (JS values and strings passed in stay allocated). So functions that take a
// JS value or a string never throw: they return their result, or an error record
// {rwkvError: name, message} that js/core.mjs turns into an exception (checked()).
// Functions with plain numbers and objects as arguments throw a JS Error directly.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>
#include <malloc.h>
#include <string.h>

#include <climits>
#include <cmath>
#include <optional>

#include "kernels/kernels.h"
#include "kernels/relaxed/relaxed.h"
#include "model/loader.h"
#include "model/runner.h"
#include "model/state_file.h"
#include "text/generate.h"
#include "text/model_file.h"
#include "text/options.h"

using emscripten::val;
using namespace rwkv;

namespace {

// Throws a JS Error named `name` with the message in `msg`, a malloc'd C string that
// this function frees: nothing is left allocated when the exception unwinds.
EM_JS(void, throw_js_error, (const char* name, char* msg), {
  const err = new Error(UTF8ToString(msg));
  err.name = UTF8ToString(name);
  _free(msg);
  throw err;
});

// Runs fn; a C++ failure becomes (name, malloc'd message), name "RwkvError" for a
// reported problem and "OutOfMemory" when allocation failed. The C++ exception is
// finished (its catch block left normally, so it is freed) before anything else.
template <typename Fn, typename OnError>
auto attempt(Fn&& fn, OnError&& on_error) -> decltype(fn()) {
  const char* name = "RwkvError";
  char* msg = nullptr;
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    name = "OutOfMemory";
    msg = strdup("out of memory: the wasm heap cannot grow any further");
  } catch (const std::exception& e) {
    msg = strdup(e.what());
  }
  return on_error(name, msg);
}

// For functions with number/object arguments only: failures throw a JS Error.
template <typename Fn>
auto guard(Fn&& fn) -> decltype(fn()) {
  return attempt(std::forward<Fn>(fn), [](const char* name, char* msg) -> decltype(fn()) {
    throw_js_error(name, msg);
    __builtin_unreachable();
  });
}

// For functions taking JS values or strings: failures come back as an error record.
template <typename Fn>
val checked(Fn&& fn) {
  return attempt([&] { return val(fn()); }, [](const char* name, char* msg) {
    val err = val::object();
    err.set("rwkvError", val(name));
    err.set("message", val(std::string(msg)));
    free(msg);
    return err;
  });
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

// Reading a JS options object: every field by its name in the options schema
// (js/options.mjs, through the X-macros of rwkv_options.h); an absent (undefined or null)
// field keeps the core's default. Numbers are checked against the schema's ranges before
// they are converted to the field's type.
template <typename T>
void read_option(const val& o, T& field, const char* name, const char* openai, double min, double max, const char* range) {
  const val v = o[name];
  if (v.isUndefined() || v.isNull()) return;
  if (!v.isNumber()) throw Error(option_message(name, openai, "must be a number"));
  const double d = v.as<double>();
  if constexpr (std::is_integral_v<T>)
    if (std::isfinite(d) && d != std::floor(d)) throw Error(option_message(name, openai, "must be an integer") + ", not " + std::to_string(d));
  check_option(name, openai, d, min, max, range);
  if constexpr (std::is_same_v<T, uint64_t>) field = uint64_t(int64_t(d));  // negative seeds wrap, as in C++
  else field = static_cast<T>(d);
}

val list_of(const val& o, const char* name, const char* openai) {
  const val v = o[name];
  if (v.isUndefined() || v.isNull()) return v;
  if (!v.isArray()) throw Error(option_message(name, openai, "must be an array"));
  return v;
}

void read_option(const val& o, std::vector<std::string>& field, const char* name, const char* openai) {
  const val v = list_of(o, name, openai);
  if (v.isUndefined() || v.isNull()) return;
  const int n = v["length"].as<int>();
  for (int i = 0; i < n; ++i) {
    if (!v[i].isString()) throw Error(option_message(name, openai, "must be an array of strings"));
    field.push_back(v[i].as<std::string>());
  }
}

void read_option(const val& o, std::vector<int32_t>& field, const char* name, const char* openai) {
  const val v = list_of(o, name, openai);
  if (!v.isUndefined() && !v.isNull()) field = emscripten::convertJSArrayToNumberVector<int32_t>(v);
}

void read_option(const val& o, std::string& field, const char* name, const char* openai) {
  const val v = o[name];
  if (v.isUndefined() || v.isNull()) return;
  if (!v.isString()) throw Error(option_message(name, openai, "must be a string"));
  field = v.as<std::string>();
}

void read_option(const val& o, bool& field, const char* name, const char* openai) {
  const val v = o[name];
  if (v.isUndefined() || v.isNull()) return;
  if (!v.isTrue() && !v.isFalse()) throw Error(option_message(name, openai, "must be true or false"));
  field = v.isTrue();
}

// {token id: bias}: keys are decimal token ids, values finite numbers (checked by the core).
void read_option(const val& o, std::vector<std::pair<int32_t, float>>& field, const char* name, const char* openai) {
  const val bias = o[name];
  if (bias.isUndefined() || bias.isNull()) return;
  const val keys = val::global("Object").call<val>("keys", bias);
  const int n = keys["length"].as<int>();
  for (int i = 0; i < n; ++i) {
    const std::string k = keys[i].as<std::string>();
    char* end = nullptr;
    const long id = std::strtol(k.c_str(), &end, 10);
    if (k.empty() || *end || id < INT32_MIN || id > INT32_MAX) throw Error(option_message(name, openai, "key '" + k + "' is not a token id"));
    const val b = bias[k];
    if (!b.isNumber()) throw Error(option_message(name, openai, "values must be numbers"));
    field.emplace_back(int32_t(id), b.as<float>());
  }
}

// `out`: the struct the fields are read into.
#define RWKV_READ_NUMBER(field, name, openai, min, max, range) read_option(o, out.field, name, openai, min, max, range);
#define RWKV_READ(field, name, openai) read_option(o, out.field, name, openai);

SamplerOptions sampler_options(const val& o) {
  SamplerOptions out;
  if (o.isUndefined() || o.isNull()) return out;
  RWKV_SAMPLER_NUMERIC(RWKV_READ_NUMBER)
  RWKV_SAMPLER_LISTS(RWKV_READ)
  RWKV_SAMPLER_MAPS(RWKV_READ)
  RWKV_SAMPLER_STRINGS(RWKV_READ)
  RWKV_SAMPLER_BOOLS(RWKV_READ)
  return out;
}

GenerateOptions generate_options(const val& o) {
  GenerateOptions out;
  out.sampler = sampler_options(o);
  if (o.isUndefined() || o.isNull()) return out;
  RWKV_GENERATE_NUMERIC(RWKV_READ_NUMBER)
  RWKV_GENERATE_LISTS(RWKV_READ)
  RWKV_GENERATE_MAPS(RWKV_READ)
  RWKV_GENERATE_STRINGS(RWKV_READ)
  RWKV_GENERATE_BOOLS(RWKV_READ)
  return out;
}
#undef RWKV_READ_NUMBER
#undef RWKV_READ

// A tokenizer: byte-level until loadVocab() gives it the World vocabulary.
class WasmTokenizer {
 public:
  WasmTokenizer() : tok(Tokenizer::byte_level()) {}
  // The vocabulary file's bytes (rwkv_vocab_v20230424.txt format); undefined or an error.
  val loadVocab(const std::string& text) {
    return checked([&] {
      tok = Tokenizer::from_vocab_text(text);
      return val::undefined();
    });
  }
  // Text (a JS string, UTF-8 encoded by Embind) to token ids: a fresh Int32Array.
  val encode(const std::string& text) const {
    return checked([&] {
      const auto ids = tok.encode(text);
      return val::global("Int32Array").new_(val(emscripten::typed_memory_view(ids.size(), ids.data())));
    });
  }
  // Token ids to text (see js_text for bytes that are not UTF-8).
  val decode(const val& ids) const {
    return checked([&] { return js_text(tok.decode(emscripten::convertJSArrayToNumberVector<int32_t>(ids))); });
  }
  size_t vocabSize() const { return tok.vocab_size(); }
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

class WasmModel {
 public:
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

  // Threads for the large products (the caller included); clamped to what the module
  // can run (1 in the single-thread build). Results are the same for any count.
  int setThreads(int n) {
    runner_.set_threads(n);
    return runner_.threads();
  }
  int threads() const { return runner_.threads(); }

  val step(WasmState& s, int32_t token) {
    return guard([&] { return view(runner_.step(s.state, token)); });
  }
  val prefill(WasmState& s, const val& tokens) {
    return checked([&] { return view(runner_.prefill(s.state, tokens_from(tokens))); });
  }
  // Logits after every token: a (T, V) view, valid until the next call.
  val prefillAll(WasmState& s, const val& tokens) {
    return checked([&] {
      const auto t = tokens_from(tokens);
      all_.assign(t.size() * size_t(model_->config().V), 0.0f);
      runner_.prefill(s.state, t, all_.data());
      return val(emscripten::typed_memory_view(all_.size(), all_.data()));
    });
  }
  // Sets `s` from a state-tuning file (blocks.N.att.time_state) given as bytes.
  val loadStateFile(WasmState& s, const std::string& bytes) {
    return checked([&] {
      load_state_file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), s.state);
      return val::undefined();
    });
  }

  // The model as a .rwkv file (docs/format.md), with the vocabulary `vocab` (bytes; empty:
  // the one embedded in the model's file, if any) and `metadata` (a JSON object of
  // strings, or ""): {size, vocabBytes, parts: Float64Array [heap offset, bytes, ...]} to write one
  // after the other. The parts lie in the heap (header, weights in place, padding) and
  // stay valid while the model lives, until the next fileParts call. Or an error record.
  val fileParts(const std::string& vocab, const std::string& metadata) {
    return checked([&] {
      image_.reset();
      image_vocab_ = vocab;
      const std::string_view v = image_vocab_.empty() ? model_->vocab() : std::string_view(image_vocab_);
      image_ = write_model_file(*model_, v, parse_metadata_json(metadata));
      std::vector<double> flat;
      for (const auto& p : image_->parts) flat.insert(flat.end(), {double(reinterpret_cast<uintptr_t>(p.data)), double(p.size)});
      val o = val::object();
      o.set("size", double(image_->size));
      o.set("vocabBytes", double(v.size()));
      o.set("parts", val::global("Float64Array").new_(val(emscripten::typed_memory_view(flat.size(), flat.data()))));
      return o;
    });
  }
  // Gives `t` the vocabulary embedded in the model's file (a .rwkv file with one): true,
  // or false (and `t` unchanged) when there is none.
  bool loadEmbeddedVocab(WasmTokenizer& t) const {
    return guard([&] {
      if (model_->vocab().empty()) return false;
      t.tok = Tokenizer::from_vocab_text(model_->vocab());
      return true;
    });
  }

 private:
  friend class WasmLoader;
  explicit WasmModel(std::unique_ptr<Model> m) : model_(std::move(m)), runner_(*model_) {}
  static val view(std::span<const float> s) { return val(emscripten::typed_memory_view(s.size(), s.data())); }
  std::unique_ptr<Model> model_;
  Runner runner_;
  std::vector<float> all_;
  std::optional<RwkvFileImage> image_;  // the last fileParts result
  std::string image_vocab_;
  friend class WasmGenerator;
};

// The weight type a `matrices` code names (-1: as in the file; else a DType number,
// dtypeCodes() names them).
LoadOptions load_options(int matrices) {
  LoadOptions options;
  if (matrices != -1) {
    if (matrices < 0 || matrices > int(DType::Q4_0) || DType(matrices) == DType::F16)
      throw Error("unknown weight type " + std::to_string(matrices) + " for the matrices");
    options.matrices = DType(matrices);
  }
  return options;
}

// {nLayer, nEmbd, vocabSize, bytes: {stored, F32, BF16, Q8_0, Q4_0}, vocabBytes, largestTensor}
// (0 bytes: a precision the model cannot be held in).
val plan_object(const ModelPlan& p) {
  val o = val::object();
  o.set("nLayer", p.config.n_layer);
  o.set("nEmbd", p.config.C);
  o.set("vocabSize", p.config.V);
  val bytes = val::object();
  bytes.set("stored", double(p.as_stored));
  bytes.set("F32", double(p.f32));
  bytes.set("BF16", double(p.bf16));
  bytes.set("Q8_0", double(p.q8_0));
  bytes.set("Q4_0", double(p.q4_0));
  o.set("bytes", bytes);
  o.set("vocabBytes", double(p.vocab_bytes));
  o.set("largestTensor", double(p.largest_tensor));
  return o;
}

// The plan of a model of these dimensions stored as bf16 (plan_for_shape): {nLayer, nEmbd,
// headSize, ffnSize, vocabSize, loraW, loraA, loraV, loraG} in, as plan() out.
val plan_shape(val shape) {
  return guard([&] {
    Config c;
    c.n_layer = shape["nLayer"].as<int>();
    c.C = shape["nEmbd"].as<int>();
    c.N = shape["headSize"].as<int>();
    if (c.N <= 0 || c.C % c.N != 0) throw Error("planShape: nEmbd must be a multiple of headSize");
    c.H = c.C / c.N;
    c.F = shape["ffnSize"].as<int>();
    c.V = shape["vocabSize"].as<int>();
    c.Dw = shape["loraW"].as<int>();
    c.Da = shape["loraA"].as<int>();
    c.Dv = shape["loraV"].as<int>();
    c.Dg = shape["loraG"].as<int>();
    return plan_object(plan_for_shape(c));
  });
}

// A model file streamed into the heap (model/loader.h): JS writes each chunk at window()
// (a heap offset; windowSize() bytes at most) and calls commit(n). Once planned(), plan()
// tells the bytes of each precision and start(code) allocates the model; finish() gives
// it. With `file`, the loader writes a .rwkv file instead (startFile, ready, pop).
// Deleting the loader frees whatever it holds.
class WasmLoader {
 public:
  explicit WasmLoader(bool file) : loader(file ? StreamLoader::Output::File : StreamLoader::Output::Model) {}
  double window() {
    return guard([&] {
      const std::span<uint8_t> w = loader.window();
      window_size_ = w.size();
      return double(reinterpret_cast<uintptr_t>(w.data()));
    });
  }
  double windowSize() const { return double(window_size_); }
  void commit(double n) { guard([&] { loader.commit(size_t(n)); }); }
  bool planned() const { return loader.planned(); }
  bool started() const { return loader.started(); }
  // {nLayer, nEmbd, vocabSize, bytes: {stored, F32, BF16, Q8_0, Q4_0}, vocabBytes, largestTensor}
  // (0 bytes: a precision this file cannot be held in).
  val plan() const {
    return guard([&] { return plan_object(loader.plan()); });
  }
  void start(int matrices) { guard([&] { loader.start(load_options(matrices)); }); }
  // Output::File: `vocab` (bytes; empty keeps the file's) and `metadata` (JSON object of
  // strings): {size, header: a view of the file's first bytes}, or an error record.
  val startFile(int matrices, const std::string& vocab, const std::string& metadata) {
    return checked([&] {
      if (!vocab.empty()) {
        const size_t n = Tokenizer::from_vocab_text(vocab).vocab_size();
        if (n > size_t(loader.plan().config.V))
          throw Error("the vocabulary has " + std::to_string(n) + " tokens but the model only " +
                      std::to_string(loader.plan().config.V) + ": wrong vocabulary file?");
      }
      loader.start(load_options(matrices), vocab, parse_metadata_json(metadata));
      const std::string& h = loader.file_header();
      val o = val::object();
      o.set("size", double(loader.file_size()));
      o.set("dtype", std::string(dtype_name(loader.weight_dtype())));
      o.set("header", val(emscripten::typed_memory_view(h.size(), reinterpret_cast<const uint8_t*>(h.data()))));
      return o;
    });
  }
  // The next complete part of the file: [file offset, heap offset, bytes], or null.
  val ready() const {
    const auto p = loader.ready();
    if (!p) return val::null();
    val a = val::array();
    a.call<void>("push", double(p->offset), double(reinterpret_cast<uintptr_t>(p->data)), double(p->size));
    return a;
  }
  void pop() { guard([&] { loader.pop(); }); }
  WasmModel* finish() {
    return guard([&]() -> WasmModel* {
      auto m = loader.finish();
      return m ? new WasmModel(std::move(m)) : nullptr;
    });
  }
  double position() const { return double(loader.position()); }
  double heldBytes() const { return double(loader.held_bytes()); }
  double peakBytes() const { return double(loader.peak_bytes()); }

 private:
  StreamLoader loader;
  size_t window_size_ = 0;
};

// A generation, idle until start().
class WasmGenerator {
 public:
  // Starts generating on state `s` after `prompt` (token ids); see Generator. The model,
  // state and tokenizer must stay alive while it runs. Undefined or an error record.
  val start(WasmModel& m, WasmState& s, const WasmTokenizer& t, const val& prompt, const val& options) {
    return checked([&] {
      gen.reset();
      gen.emplace(m.runner_, s.state, t.tok, emscripten::convertJSArrayToNumberVector<int32_t>(prompt),
                  generate_options(options));
      return val::undefined();
    });
  }
  // One step: {text, token, done, reason}; token -1 while the prompt is being fed.
  val next() {
    return guard([&] {
      if (!gen) throw Error("generator not started");
      Generator::Piece p = gen->next();
      val o = val::object();
      o.set("text", js_text(p.text));
      o.set("token", p.token);
      o.set("done", p.done);
      o.set("reason", std::string(p.done ? stop_reason_name(p.reason) : ""));
      return o;
    });
  }
  // Text held back at the end (an incomplete character, a partial stop-string match).
  val finish() { return gen ? js_text(gen->finish()) : val(std::string()); }
  // With the trace option: the records of the tokens the last next() fed, a view of
  // (tokens, record size) floats valid until the next call (docs/inspect.md); else null.
  val trace() const {
    const Trace* t = gen ? gen->trace() : nullptr;
    if (!t) return val::null();
    return val(emscripten::typed_memory_view(t->tokens() * t->record_size(), t->data()));
  }
  std::optional<Generator> gen;
};

// Constrained decoding without a Generator (docs/grammar.md): which tokens a grammar
// allows next, for sampling step by step. Idle until start().
class WasmGrammar {
 public:
  // `text`: the grammar; `vocab`: the model's vocabulary size (token 0 is end of text,
  // allowed only where the grammar may end). Undefined or an error record.
  val start(const WasmTokenizer& t, const std::string& text, int vocab) {
    return checked([&] {
      matcher.reset();
      if (vocab <= 0) throw Error("grammar: the vocabulary size must be positive, not " + std::to_string(vocab));
      matcher.emplace(Grammar::parse(text), std::make_shared<TokenTrie>(t.tok, size_t(vocab), 0));
      flags.assign(size_t(vocab), 0);
      return val::undefined();
    });
  }
  // A Uint8Array view (vocab entries): 1 where the token may come next. Valid until the
  // next call that may grow the heap.
  val allowed() {
    return guard([&] {
      const auto& bits = started().allowed();
      for (size_t t = 0; t < flags.size(); ++t) flags[t] = uint8_t((bits[t >> 6] >> (t & 63)) & 1);
      return val(emscripten::typed_memory_view(flags.size(), flags.data()));
    });
  }
  // Advances by the token; throws when the grammar does not allow it.
  void accept(int32_t token) { guard([&] { started().accept(token); }); }
  bool canEnd() { return guard([&] { return started().can_end(); }); }
  bool ended() { return guard([&] { return started().ended(); }); }

 private:
  GrammarMatcher& started() {
    if (!matcher) throw Error("grammar not started");
    return *matcher;
  }
  std::optional<GrammarMatcher> matcher;
  std::vector<uint8_t> flags;
};

// One draw from logits with the given options (a fresh sampler: no penalty history).
val sample_once(const val& logits, const val& options) {
  return checked([&] {
    auto l = emscripten::convertJSArrayToNumberVector<float>(logits);
    Sampler sampler(sampler_options(options), l.size());
    return sampler.sample(l);
  });
}

// The weight types the matrices can be converted to on load, by name: {F32: 0, BF16: 2, ...}
// (the numbers Loader.start takes).
val dtype_codes() {
  val o = val::object();
  for (int i = 0; i < kDTypeCount; ++i)
    if (DType(i) != DType::F16) o.set(dtype_name(DType(i)), i);
  return o;
}

}  // namespace

EMSCRIPTEN_BINDINGS(rwkv) {
  using namespace emscripten;
  // The kernels' instruction set, "+relaxed" when the relaxed-SIMD module is in use (it is
  // loaded here, on the thread that prepares the products, if it was not yet).
  function("simd", +[]() {
    return std::string(kernels::simd_name()) + (kernels::relaxed::module() ? "+relaxed" : "");
  });
  function("dtypeCodes", &dtype_codes);
  function("planShape", &plan_shape);
  // Prompt tokens fed between two looks at the abort flag (the generator's and the worker's).
  function("prefillSlice", +[]() { return int(Generator::kPrefillSlice); });
  function("sampleOnce", &sample_once);
  // Bytes of the wasm heap in use by allocations (the heap itself never shrinks).
  function("heapUsed", +[]() { return double(mallinfo().uordblks); });
  class_<WasmTokenizer>("Tokenizer")
      .constructor<>()
      .function("loadVocab", &WasmTokenizer::loadVocab)
      .function("encode", &WasmTokenizer::encode)
      .function("decode", &WasmTokenizer::decode)
      .function("vocabSize", &WasmTokenizer::vocabSize);
  class_<WasmGenerator>("Generator")
      .constructor<>()
      .function("start", &WasmGenerator::start)
      .function("next", &WasmGenerator::next)
      .function("finish", &WasmGenerator::finish)
      .function("trace", &WasmGenerator::trace);
  class_<WasmGrammar>("Grammar")
      .constructor<>()
      .function("start", &WasmGrammar::start)
      .function("allowed", &WasmGrammar::allowed)
      .function("accept", &WasmGrammar::accept)
      .function("canEnd", &WasmGrammar::canEnd)
      .function("ended", &WasmGrammar::ended);
  class_<WasmState>("State")
      .function("data", &WasmState::data)
      .function("size", &WasmState::size)
      .function("reset", &WasmState::reset)
      .function("copyFrom", &WasmState::copyFrom);
  class_<WasmLoader>("Loader")
      .constructor<bool>()
      .function("window", &WasmLoader::window)
      .function("windowSize", &WasmLoader::windowSize)
      .function("commit", &WasmLoader::commit)
      .function("planned", &WasmLoader::planned)
      .function("started", &WasmLoader::started)
      .function("plan", &WasmLoader::plan)
      .function("start", &WasmLoader::start)
      .function("startFile", &WasmLoader::startFile)
      .function("ready", &WasmLoader::ready)
      .function("pop", &WasmLoader::pop)
      .function("finish", &WasmLoader::finish, allow_raw_pointers())
      .function("position", &WasmLoader::position)
      .function("heldBytes", &WasmLoader::heldBytes)
      .function("peakBytes", &WasmLoader::peakBytes);
  class_<WasmModel>("Model")
      .function("config", &WasmModel::config)
      .function("newState", &WasmModel::newState, allow_raw_pointers())
      .function("setThreads", &WasmModel::setThreads)
      .function("threads", &WasmModel::threads)
      .function("step", &WasmModel::step)
      .function("prefill", &WasmModel::prefill)
      .function("prefillAll", &WasmModel::prefillAll)
      .function("loadStateFile", &WasmModel::loadStateFile)
      .function("fileParts", &WasmModel::fileParts)
      .function("loadEmbeddedVocab", &WasmModel::loadEmbeddedVocab);
}
