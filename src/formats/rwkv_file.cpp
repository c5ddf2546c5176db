#include "formats/rwkv_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

#include "base/bytes.h"
#include "base/json.h"
#include "base/dtype.h"

namespace rwkv {

static_assert(std::endian::native == std::endian::little, "the .rwkv reader and writer assume a little-endian host");

namespace {

constexpr int kMaxDims = 8;
constexpr int64_t kMaxDim = int64_t(1) << 40;

using Node = Json::Node;
using Kind = Json::Node::Kind;

[[noreturn]] void fail(const std::string& msg) { throw Error("rwkv file: " + msg); }

int64_t get_int(const Node& obj, std::string_view key, const std::string& what) {
  const Node* n = obj.get(key);
  if (!n || n->kind != Kind::Number) fail(what + " needs an integer \"" + std::string(key) + "\"");
  return n->num;
}

// One range of the file: a tensor or the vocabulary.
struct Entry {
  std::string what;  // "tensor 'x'" or "vocabulary"
  uint64_t offset, bytes;
};

// Checks an entry's offset and size against the file: aligned, after the header, inside.
Entry place(const std::string& what, const Node& obj, uint64_t header_end, uint64_t size) {
  const int64_t offset = get_int(obj, "offset", what), bytes = get_int(obj, "bytes", what);
  if (offset < 0 || bytes < 0) fail(what + ": negative offset or size");
  if (uint64_t(offset) % kRwkvFileAlign != 0)
    fail(what + ": offset " + std::to_string(offset) + " is not a multiple of " + std::to_string(kRwkvFileAlign));
  if (uint64_t(offset) < header_end)
    fail(what + ": offset " + std::to_string(offset) + " lies inside the header (which ends at " + std::to_string(header_end) + ")");
  if (uint64_t(offset) > size || uint64_t(bytes) > size - uint64_t(offset))
    fail(what + ": bytes [" + std::to_string(offset) + ", " + std::to_string(uint64_t(offset) + uint64_t(bytes)) +
         ") lie past the end of the " + std::to_string(size) + "-byte file (truncated download?)");
  return {what, uint64_t(offset), uint64_t(bytes)};
}

}  // namespace

uint32_t rwkv_header_bytes(const uint8_t* data, size_t size) {
  if (!is_rwkv_file(data, size)) fail("the file does not start with the .rwkv magic bytes");
  Reader r(data, size, "rwkv file");
  r.take(8);
  if (r.remaining() < 8) fail("the file ends inside its first 16 bytes (truncated download?)");
  const uint32_t version = r.le<uint32_t>();
  if (version != kRwkvFileVersion)
    fail("format version " + std::to_string(version) + " is not supported (this reader knows version " +
         std::to_string(kRwkvFileVersion) + "; a newer rwkv-web may read it)");
  const uint32_t header_len = r.le<uint32_t>();
  if (header_len > kRwkvMaxHeaderBytes) fail("JSON header of " + std::to_string(header_len) + " bytes is implausibly large");
  return header_len;
}

RwkvFileTable read_rwkv_table(const uint8_t* data, size_t size, uint64_t file_size) {
  const uint32_t header_len = rwkv_header_bytes(data, size);
  if (header_len > size - kRwkvFilePrefix)
    fail("JSON header of " + std::to_string(header_len) + " bytes is longer than the file (truncated download?)");
  const Node root = Json({reinterpret_cast<const char*>(data) + kRwkvFilePrefix, header_len}, "rwkv file header").parse();
  const uint64_t header_end = kRwkvFilePrefix + header_len;
  if (root.kind != Kind::Object) fail("the header is not a JSON object");

  const Node* arch = root.get("architecture");
  if (!arch || arch->kind != Kind::String) fail("the header has no \"architecture\" string");
  if (arch->str != "x070") fail("architecture '" + arch->str + "' is not supported (only RWKV-7, \"x070\")");

  RwkvFileTable out;
  out.header_end = header_end;
  std::vector<Entry> entries;
  const Node* tensors = root.get("tensors");
  if (!tensors || tensors->kind != Kind::Object) fail("the header has no \"tensors\" object");
  std::unordered_set<std::string_view> names;
  out.tensors.reserve(tensors->keys.size());
  for (size_t i = 0; i < tensors->keys.size(); ++i) {
    const std::string& name = tensors->keys[i];
    const Node& t = tensors->values[i];
    const std::string what = "tensor '" + name + "'";
    if (!names.insert(name).second) fail(what + " appears twice in the tensor table");
    if (t.kind != Kind::Object) fail(what + ": its entry is not an object");
    const Node* dt = t.get("dtype");
    const Node* shape = t.get("shape");
    if (!dt || dt->kind != Kind::String) fail(what + " needs a \"dtype\" string");
    if (!shape || shape->kind != Kind::Array) fail(what + " needs a \"shape\" array");
    DType dtype;
    if (!dtype_from_name(dt->str, dtype)) fail(what + ": dtype '" + dt->str + "' is unknown (F32, F16, BF16, Q8_0, Q4_0 are)");
    TensorInfo info{name, dtype, {}, {}, nullptr};
    if (shape->elements.size() > kMaxDims) fail(what + ": has " + std::to_string(shape->elements.size()) + " dimensions");
    for (const Node& d : shape->elements) {
      if (d.kind != Kind::Number) fail(what + ": its shape holds a non-integer");
      info.shape.push_back(d.num);
    }
    const uint64_t need = rwkv_tensor_bytes(what, dtype, info.shape);
    Entry e = place(what, t, header_end, file_size);
    if (e.bytes != need)
      fail(what + ": " + dtype_name(dtype) + " " + shape_string(info.shape) + " needs " + std::to_string(need) +
           " bytes but its entry says " + std::to_string(e.bytes));
    info.stride.assign(info.shape.size(), 1);
    for (size_t d = info.shape.size(); d-- > 1;) info.stride[d - 1] = info.stride[d] * info.shape[d];
    info.data = nullptr;
    out.offsets.push_back(e.offset);
    entries.push_back(std::move(e));
    out.tensors.push_back(std::move(info));
  }

  if (const Node* vocab = root.get("vocabulary"); vocab && vocab->kind != Kind::Null) {
    if (vocab->kind != Kind::Object) fail("\"vocabulary\" is not an object");
    const Node* format = vocab->get("format");
    if (!format || format->kind != Kind::String) fail("the vocabulary needs a \"format\" string");
    if (format->str != kRwkvVocabFormat)
      fail("vocabulary format '" + format->str + "' is unknown (\"" + std::string(kRwkvVocabFormat) + "\" is supported)");
    Entry e = place("vocabulary", *vocab, header_end, file_size);
    out.has_vocab = true;
    out.vocab_offset = e.offset;
    out.vocab_bytes = e.bytes;
    entries.push_back(std::move(e));
  }

  // No two entries share a byte (empty ones hold none).
  std::vector<const Entry*> order;
  for (const auto& e : entries)
    if (e.bytes) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i - 1]->offset + order[i - 1]->bytes > order[i]->offset)
      fail(order[i - 1]->what + " (bytes " + std::to_string(order[i - 1]->offset) + ".." +
           std::to_string(order[i - 1]->offset + order[i - 1]->bytes) + ") overlaps " + order[i]->what + " (from byte " +
           std::to_string(order[i]->offset) + ")");

  // The config repeats what the tensors say; it must agree with them.
  const Node* config = root.get("config");
  if (!config || config->kind != Kind::Object) fail("the header has no \"config\" object");
  for (size_t i = 0; i < config->keys.size(); ++i)
    if (config->values[i].kind != Kind::Number || config->values[i].num < 0)
      fail("config \"" + config->keys[i] + "\" is not a non-negative integer");
  const int64_t n_layer = get_int(*config, "n_layer", "config"), n_embd = get_int(*config, "n_embd", "config"),
                vocab_size = get_int(*config, "vocab_size", "config");
  int64_t layers = 0;
  for (const auto& t : out.tensors) {
    if (t.name.compare(0, 7, "blocks.") != 0) continue;
    int64_t i = 0;
    size_t p = 7;
    while (p < t.name.size() && p < 15 && t.name[p] >= '0' && t.name[p] <= '9') i = i * 10 + (t.name[p++] - '0');
    if (p > 7 && p < t.name.size() && t.name[p] == '.') layers = std::max(layers, i + 1);
  }
  if (layers != n_layer)
    fail("config says n_layer " + std::to_string(n_layer) + " but the tensors have " + std::to_string(layers) + " layers");
  for (const auto& t : out.tensors)
    if (t.name == "emb.weight" && (t.shape.size() != 2 || t.shape[0] != vocab_size || t.shape[1] != n_embd))
      fail("config says vocab_size " + std::to_string(vocab_size) + ", n_embd " + std::to_string(n_embd) +
           " but 'emb.weight' has shape " + shape_string(t.shape));

  if (const Node* meta = root.get("metadata"); meta && meta->kind != Kind::Object) fail("\"metadata\" is not an object");
  return out;
}

namespace {

// The table of a whole .rwkv file in memory, its tensors pointing into `data`.
RwkvFileTable parse(const uint8_t* data, size_t size) {
  RwkvFileTable t = read_rwkv_table(data, size, size);
  for (size_t i = 0; i < t.tensors.size(); ++i) t.tensors[i].data = data + t.offsets[i];
  return t;
}

}  // namespace

bool is_rwkv_file(const uint8_t* data, size_t size) {
  return size >= 8 && std::memcmp(data, kRwkvFileMagic, 8) == 0;
}

std::vector<TensorInfo> read_rwkv_file(const uint8_t* data, size_t size) { return parse(data, size).tensors; }

std::string_view rwkv_file_vocab(const uint8_t* data, size_t size) {
  if (!is_rwkv_file(data, size)) return {};
  const RwkvFileTable t = read_rwkv_table(data, size, size);
  if (!t.has_vocab) return {};
  return {reinterpret_cast<const char*>(data + t.vocab_offset), size_t(t.vocab_bytes)};
}

uint64_t rwkv_tensor_bytes(const std::string& what, DType dtype, const std::vector<int64_t>& shape) {
  auto bad = [&](const std::string& why) { fail(what + ": " + why); };
  if (shape.size() > kMaxDims) bad("has " + std::to_string(shape.size()) + " dimensions (at most " + std::to_string(kMaxDims) + ")");
  for (int64_t n : shape)
    if (n < 0 || n > kMaxDim) bad("dimension " + std::to_string(n) + " is out of range");
  if (is_quantized(dtype)) {
    if (shape.size() != 2) bad(std::string(dtype_name(dtype)) + " needs a 2-D shape (rows, cols), not " + shape_string(shape));
    if (shape[1] % kQuantBlock != 0)
      bad(std::string(dtype_name(dtype)) + " needs a column count divisible by " + std::to_string(kQuantBlock) + ", not " + std::to_string(shape[1]));
    if (shape[1] != 0 && shape[0] > (int64_t(1) << 56) / shape[1]) bad("shape " + shape_string(shape) + " is too large");
    return matrix_bytes(dtype, uint64_t(shape[0]), uint64_t(shape[1]));
  }
  uint64_t numel = 1;
  for (int64_t n : shape) {
    if (n != 0 && numel > uint64_t(kMaxDim) / uint64_t(n)) bad("shape " + shape_string(shape) + " is too large");
    numel *= uint64_t(n);
  }
  return numel * dtype_size(dtype);
}

}  // namespace rwkv
