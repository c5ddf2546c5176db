// Embind bindings: the only file that knows about JavaScript. Few exports, bulk data:
// model bytes are written by JS straight into the wasm heap and handed over by pointer;
// logits and states come back as typed-array views of wasm memory (no copies), valid
// until the next call that may grow the heap.
#include <emscripten/bind.h>
#include <emscripten/val.h>

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

std::vector<int32_t> tokens_from(const val& tokens) {
  return emscripten::convertJSArrayToNumberVector<int32_t>(tokens);
}

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
  std::vector<float> all_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(rwkv) {
  using namespace emscripten;
  function("simd", +[]() { return std::string(kernels::simd_name()); });
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
      .function("loadStateFile", &WasmModel::loadStateFile);
}
