#include "formats/pickle.h"

#include <memory>
#include <unordered_map>

#include "base/bytes.h"

namespace rwkv {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// A pickled Python object, as far as state dicts need them.
struct Value {
  enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor } kind;
  explicit Value(Kind k) : kind(k) {}
  int64_t i = 0;                // Int, Bool; Storage: element count
  double f = 0;                 // Float
  std::string s;                // Str; Global: "module.name"; Storage: blob key
  std::vector<ValuePtr> items;  // Tuple, List; Dict: key, value, key, value, ...
  DType dtype = DType::F32;     // Storage, Tensor
  bool dtype_known = true;      // Storage: false for storages we cannot read (double, int...)
  std::shared_ptr<PickledTensor> tensor;  // Tensor
  int depth = 1;                // nesting depth, bounded so hostile files cannot blow the stack
};

constexpr int kMaxDepth = 32;
constexpr size_t kMaxStack = size_t(1) << 20;

const char* kind_name(Value::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                                "dict", "global", "storage", "tensor"};
  return names[int(k)];
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size) : r_(data, size, "pickle data.pkl") {}
  // Dicts and lists are mutable, so a hostile pickle can make them hold each other:
  // emptying them all breaks such cycles (and ends deep nesting without recursion).
  ~Unpickler() {
    for (auto& c : containers_) c->items.clear();
  }

  ValuePtr run() {
    for (;;) {
      const size_t at = r_.pos();
      const uint8_t op = r_.u8();
      switch (op) {
        case 0x80: r_.u8(); break;              // PROTO
        case 0x95: r_.le<uint64_t>(); break;    // FRAME (length is advisory)
        case '.':                               // STOP
          if (stack_.size() != 1) fail(at, "stack holds " + std::to_string(stack_.size()) + " values at STOP");
          return stack_.back();
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 'N': push(make(Value::Kind::None)); break;
        case 0x88: push(make_int(1, Value::Kind::Bool)); break;  // NEWTRUE
        case 0x89: push(make_int(0, Value::Kind::Bool)); break;  // NEWFALSE
        case 'J': push(make_int(r_.le<int32_t>())); break;       // BININT
        case 'K': push(make_int(r_.u8())); break;                // BININT1
        case 'M': push(make_int(r_.le<uint16_t>())); break;      // BININT2
        case 0x8a: {                                             // LONG1
          const uint8_t n = r_.u8();
          if (n > 8) fail(at, "integer of " + std::to_string(n) + " bytes is too large");
          const uint8_t* p = r_.take(n);
          uint64_t v = 0;
          for (int b = n - 1; b >= 0; --b) v = (v << 8) | p[b];
          if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          push(make_int(int64_t(v)));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian double
          const uint8_t* p = r_.take(8);
          uint64_t bits = 0;
          for (int b = 0; b < 8; ++b) bits = (bits << 8) | p[b];
          auto v = std::make_shared<Value>(Value::Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': push(make_str(r_.str(r_.le<uint32_t>()))); break;   // BINUNICODE
        case 0x8c: push(make_str(r_.str(r_.u8()))); break;            // SHORT_BINUNICODE
        case 0x8d: push(make_str(r_.str(checked_len(r_.le<uint64_t>(), at)))); break;  // BINUNICODE8
        case 'T': push(make_str(r_.str(checked_len(r_.le<uint32_t>(), at)))); break;   // BINSTRING
        case 'U': push(make_str(r_.str(r_.u8()))); break;             // SHORT_BINSTRING
        case 'B': push(make_str(r_.str(checked_len(r_.le<uint32_t>(), at)))); break;   // BINBYTES
        case 'C': push(make_str(r_.str(r_.u8()))); break;             // SHORT_BINBYTES
        case ')': push(make(Value::Kind::Tuple)); break;              // EMPTY_TUPLE
        case ']': push(make(Value::Kind::List)); break;               // EMPTY_LIST
        case '}': push(make(Value::Kind::Dict)); break;               // EMPTY_DICT
        case 't': push(make_seq(Value::Kind::Tuple, pop_mark(at), at)); break;  // TUPLE
        case 'l': push(make_seq(Value::Kind::List, pop_mark(at), at)); break;   // LIST
        case 'd': {                                                              // DICT
          auto items = pop_mark(at);
          if (items.size() % 2) fail(at, "DICT with an odd number of items");
          push(make_seq(Value::Kind::Dict, std::move(items), at));
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84;
          need(n, at);
          std::vector<ValuePtr> items(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(make_seq(Value::Kind::Tuple, std::move(items), at));
          break;
        }
        case 'q': memo_[r_.u8()] = top(at); break;              // BINPUT
        case 'r': memo_[r_.le<uint32_t>()] = top(at); break;    // LONG_BINPUT
        case 0x94: memo_[uint32_t(memo_.size())] = top(at); break;  // MEMOIZE
        case 'h': push(memo_get(r_.u8(), at)); break;            // BINGET
        case 'j': push(memo_get(r_.le<uint32_t>(), at)); break;  // LONG_BINGET
        case '0': need(1, at); stack_.pop_back(); break;         // POP
        case '2': push(top(at)); break;                          // DUP
        case 'c': {                                              // GLOBAL "module\nname\n"
          std::string module = read_line(at), name = read_line(at);
          push(make_global(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(at), module = pop(at);
          if (module->kind != Value::Kind::Str || name->kind != Value::Kind::Str) fail(at, "STACK_GLOBAL needs two strings");
          push(make_global(module->s + "." + name->s));
          break;
        }
        case 'Q': push(persistent_load(pop(at), at)); break;  // BINPERSID
        case 'R': {                                            // REDUCE
          ValuePtr args = pop(at), fn = pop(at);
          push(reduce(*fn, *args, at));
          break;
        }
        case 0x81: {  // NEWOBJ cls(*args): only the OrderedDict case matters
          ValuePtr args = pop(at), cls = pop(at);
          push(reduce(*cls, *args, at));
          break;
        }
        case 'b': {  // BUILD: set state of an object; tensors and dicts ignore (empty) state
          pop(at);
          top(at);
          break;
        }
        case 's': {  // SETITEM
          ValuePtr v = pop(at), k = pop(at);
          set_items(at, {k, v});
          break;
        }
        case 'u': set_items(at, pop_mark(at)); break;  // SETITEMS
        case 'a': {                                    // APPEND
          ValuePtr v = pop(at);
          append(at, {v});
          break;
        }
        case 'e': append(at, pop_mark(at)); break;  // APPENDS
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(at, std::string("unsupported pickle opcode ") + hex +
                       " (a torch state dict uses only a small subset of pickle)");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& msg) const {
    throw Error("pickle data.pkl: at byte " + std::to_string(at) + ": " + msg);
  }
  ValuePtr make(Value::Kind k) const {
    auto v = std::make_shared<Value>(k);
    if (k == Value::Kind::Dict || k == Value::Kind::List) containers_.push_back(v);
    return v;
  }
  static ValuePtr make_int(int64_t i, Value::Kind k = Value::Kind::Int) {
    auto v = std::make_shared<Value>(k);
    v->i = i;
    return v;
  }
  static ValuePtr make_str(std::string_view s) {
    auto v = std::make_shared<Value>(Value::Kind::Str);
    v->s = s;
    return v;
  }
  static ValuePtr make_global(std::string name) {
    auto v = std::make_shared<Value>(Value::Kind::Global);
    v->s = std::move(name);
    return v;
  }
  ValuePtr make_seq(Value::Kind k, std::vector<ValuePtr> items, size_t at) const {
    ValuePtr v = make(k);
    for (auto& item : items) v->depth = std::max(v->depth, item->depth + 1);
    if (v->depth > kMaxDepth) fail(at, "objects nested deeper than " + std::to_string(kMaxDepth));
    v->items = std::move(items);
    return v;
  }
  size_t checked_len(uint64_t n, size_t at) const {
    if (n > r_.remaining()) fail(at, "string of " + std::to_string(n) + " bytes runs past the end");
    return size_t(n);
  }
  std::string read_line(size_t at) {
    std::string line;
    for (;;) {
      const char c = char(r_.u8());
      if (c == '\n') return line;
      if (line.size() > 256) fail(at, "GLOBAL name too long");
      line += c;
    }
  }
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) throw Error("pickle data.pkl: stack grows beyond its limit");
    stack_.push_back(std::move(v));
  }
  void need(size_t n, size_t at) const {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail(at, "stack underflow");
  }
  ValuePtr pop(size_t at) {
    need(1, at);
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top(size_t at) const {
    need(1, at);
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  ValuePtr memo_get(uint32_t key, size_t at) const {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail(at, "memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }
  // Mutating opcodes change the object in place, as Python does: the memo and the stack
  // may hold the same dict or list.
  Value& mutable_top(Value::Kind want, size_t at) {
    need(1, at);
    if (stack_.back()->kind != want)
      fail(at, std::string("expected a ") + kind_name(want) + " but found a " + kind_name(stack_.back()->kind));
    return *stack_.back();
  }
  void set_items(size_t at, std::vector<ValuePtr> kv) {
    if (kv.size() % 2) fail(at, "SETITEMS with an odd number of items");
    Value& d = mutable_top(Value::Kind::Dict, at);
    for (auto& item : kv) {
      if (item.get() == &d) fail(at, "a dict inserted into itself");
      d.depth = std::max(d.depth, item->depth + 1);
      d.items.push_back(std::move(item));
    }
    if (d.depth > kMaxDepth) fail(at, "objects nested deeper than " + std::to_string(kMaxDepth));
  }
  void append(size_t at, std::vector<ValuePtr> items) {
    Value& l = mutable_top(Value::Kind::List, at);
    for (auto& item : items) {
      if (item.get() == &l) fail(at, "a list appended to itself");
      l.depth = std::max(l.depth, item->depth + 1);
      l.items.push_back(std::move(item));
    }
    if (l.depth > kMaxDepth) fail(at, "objects nested deeper than " + std::to_string(kMaxDepth));
  }

  // ('storage', torch.XStorage, key, location, numel) -> a storage reference.
  ValuePtr persistent_load(const ValuePtr& pid, size_t at) const {
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::Tuple || t.size() < 5 || t[0]->kind != Value::Kind::Str || t[0]->s != "storage" ||
        t[1]->kind != Value::Kind::Global || t[2]->kind != Value::Kind::Str || t[4]->kind != Value::Kind::Int)
      fail(at, "persistent id is not a torch storage reference");
    auto v = std::make_shared<Value>(Value::Kind::Storage);
    const std::string& type = t[1]->s;
    if (type == "torch.FloatStorage") v->dtype = DType::F32;
    else if (type == "torch.HalfStorage") v->dtype = DType::F16;
    else if (type == "torch.BFloat16Storage") v->dtype = DType::BF16;
    else v->dtype_known = false;
    v->s = t[2]->s;
    v->i = t[4]->i;
    if (v->i < 0) fail(at, "storage with negative size");
    v->items = {t[1]};  // keeps the type name for error messages
    return v;
  }

  ValuePtr reduce(const Value& fn, const Value& args, size_t at) const {
    if (fn.kind != Value::Kind::Global) fail(at, "REDUCE of a non-callable " + std::string(kind_name(fn.kind)));
    if (args.kind != Value::Kind::Tuple) fail(at, "REDUCE arguments are not a tuple");
    const auto& a = args.items;
    if (fn.s == "collections.OrderedDict" || fn.s == "builtins.dict") {
      if (!a.empty()) fail(at, fn.s + " with arguments is not supported");
      return make(Value::Kind::Dict);
    }
    if (fn.s == "torch._utils._rebuild_parameter" || fn.s == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::Kind::Tensor) fail(at, "_rebuild_parameter without a tensor");
      return a[0];
    }
    if (fn.s == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 4 || a[0]->kind != Value::Kind::Storage || a[1]->kind != Value::Kind::Int ||
          a[2]->kind != Value::Kind::Tuple || a[3]->kind != Value::Kind::Tuple)
        fail(at, "malformed _rebuild_tensor_v2 arguments");
      const Value& storage = *a[0];
      if (!storage.dtype_known)
        fail(at, "tensor stored as " + storage.items[0]->s + "; only float32, float16 and bfloat16 are supported");
      auto t = std::make_shared<PickledTensor>();
      t->dtype = storage.dtype;
      t->storage_key = storage.s;
      t->storage_numel = storage.i;
      t->offset = a[1]->i;
      if (a[2]->items.size() != a[3]->items.size()) fail(at, "tensor size and stride differ in length");
      for (size_t d = 0; d < a[2]->items.size(); ++d) {
        const Value& n = *a[2]->items[d];
        const Value& s = *a[3]->items[d];
        if (n.kind != Value::Kind::Int || s.kind != Value::Kind::Int) fail(at, "tensor size/stride are not integers");
        t->shape.push_back(n.i);
        t->stride.push_back(s.i);
      }
      auto v = std::make_shared<Value>(Value::Kind::Tensor);
      v->tensor = std::move(t);
      return v;
    }
    fail(at, "unsupported callable " + fn.s + " (expected a plain torch state dict)");
  }

  Reader r_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  mutable std::vector<ValuePtr> containers_;  // every dict and list made
};

}  // namespace

std::vector<PickledTensor> read_state_dict_pickle(const uint8_t* data, size_t size) {
  Unpickler unpickler(data, size);  // owns the objects until the tensors are copied out
  ValuePtr root = unpickler.run();
  if (root->kind != Value::Kind::Dict)
    throw Error(std::string("pickle data.pkl: top-level object is a ") + kind_name(root->kind) +
                ", not a state dict");
  std::vector<PickledTensor> out;
  for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const Value& k = *root->items[i];
    const Value& v = *root->items[i + 1];
    if (k.kind != Value::Kind::Str) throw Error("pickle data.pkl: state dict key is not a string");
    if (v.kind != Value::Kind::Tensor) continue;  // non-tensor entries (metadata) are not weights
    PickledTensor t = *v.tensor;
    t.name = k.s;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace rwkv
