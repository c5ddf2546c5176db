#include "formats/checkpoint.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "base/bytes.h"
#include "formats/gguf.h"
#include "formats/rwkv_file.h"
#include "base/json.h"
#include "formats/pickle.h"
#include "formats/zip.h"

namespace rwkv {

bool TensorInfo::contiguous() const {
  int64_t expect = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

float element_f32(const TensorInfo& t, int64_t offset) {
  const uint8_t* p = t.data + offset * int64_t(dtype_size(t.dtype));
  if (t.dtype == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  if (t.dtype == DType::F16) return f16_to_f32(h);
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

constexpr int kMaxDims = 8;
constexpr int64_t kMaxDim = int64_t(1) << 40;

}  // namespace

void check_view(const std::string& name, int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                const std::vector<int64_t>& stride) {
  auto bad = [&](const std::string& why) { throw Error("tensor '" + name + "': " + why); };
  if (shape.size() > kMaxDims) bad("has " + std::to_string(shape.size()) + " dimensions");
  if (offset < 0 || offset > numel) bad("storage offset " + std::to_string(offset) + " is outside its storage");
  // An empty tensor reads nothing; otherwise the furthest element is
  // offset + sum((shape[d] - 1) * stride[d]), which must stay below numel.
  for (int64_t n : shape)
    if (n < 0 || n > kMaxDim) bad("dimension " + std::to_string(n) + " is out of range");
  for (int64_t n : shape)
    if (n == 0) return;
  // More elements than the storage holds means overlapping views (stride 0 and the
  // like), which torch.save never writes for weights: a tiny file could otherwise ask
  // for gigabytes of work. Shapes are at most 2^40 each, so the product is checked as it goes.
  int64_t count = 1;
  for (int64_t n : shape) {
    if (count > (numel - offset) / n) bad("shape " + shape_string(shape) + " has more elements than its storage holds past offset " + std::to_string(offset));
    count *= n;
  }
  int64_t last = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (stride[d] < 0) bad("negative stride");
    const int64_t span = shape[d] - 1;
    if (span > 0 && stride[d] > (numel - 1 - last) / span)
      bad("shape " + shape_string(shape) + " with its strides reaches past the end of its storage of " +
          std::to_string(numel) + " elements");
    last += span * stride[d];
  }
  if (last >= numel) bad("storage of " + std::to_string(numel) + " elements is too small for its shape");
}


std::vector<SafetensorsEntry> parse_safetensors_header(std::string_view json, uint64_t data_size) {
  const Json::Node root = Json(json, "safetensors header").parse();
  if (root.kind != Json::Node::Kind::Object) throw Error("safetensors header is not a JSON object");
  std::vector<SafetensorsEntry> out;
  for (size_t m = 0; m < root.keys.size(); ++m) {
    const std::string& name = root.keys[m];
    const Json::Node& node = root.values[m];
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) { throw Error("safetensors tensor '" + name + "': " + why); };
    const auto* dt = node.get("dtype");
    const auto* shape = node.get("shape");
    const auto* offs = node.get("data_offsets");
    if (!dt || !shape || !offs || dt->kind != Json::Node::Kind::String || shape->kind != Json::Node::Kind::Array ||
        offs->kind != Json::Node::Kind::Array || offs->elements.size() != 2)
      bad("needs dtype, shape and data_offsets");
    DType dtype = DType::F32;
    if (dt->str == "F32") dtype = DType::F32;
    else if (dt->str == "F16") dtype = DType::F16;
    else if (dt->str == "BF16") dtype = DType::BF16;
    else bad("dtype " + dt->str + " is not supported (F32, F16 and BF16 are)");
    SafetensorsEntry e{name, dtype, {}, 0, 0};
    for (const auto& d : shape->elements) {
      if (d.kind != Json::Node::Kind::Number) bad("shape holds a non-integer");
      e.shape.push_back(d.num);
    }
    if (e.shape.size() > kMaxDims) bad("has too many dimensions");
    int64_t numel = 1;
    for (size_t d = e.shape.size(); d-- > 0;) {
      if (e.shape[d] < 0 || e.shape[d] > kMaxDim) bad("dimension " + std::to_string(e.shape[d]) + " is out of range");
      if (e.shape[d] != 0 && numel > kMaxDim / e.shape[d]) bad("shape " + shape_string(e.shape) + " is too large");
      numel *= e.shape[d];
    }
    const int64_t begin = offs->elements[0].num, end = offs->elements[1].num;
    if (begin < 0 || end < begin || uint64_t(end) > data_size)
      bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] lie outside the " +
          std::to_string(data_size) + " data bytes (truncated download?)");
    if (uint64_t(end - begin) != uint64_t(numel) * dtype_size(dtype))
      bad("shape " + shape_string(e.shape) + " needs " + std::to_string(numel * int64_t(dtype_size(dtype))) +
          " bytes but data_offsets give " + std::to_string(end - begin));
    e.begin = uint64_t(begin);
    e.end = uint64_t(end);
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

std::vector<TensorInfo> read_pth(const uint8_t* data, size_t size) {
  const auto entries = read_zip(data, size);
  const ZipEntry* pkl = nullptr;
  for (const auto& e : entries) {
    const std::string& n = e.name;
    if (n.size() >= 8 && n.compare(n.size() - 8, 8, "data.pkl") == 0 &&
        (n.size() == 8 || n[n.size() - 9] == '/')) {
      pkl = &e;
      break;
    }
  }
  if (!pkl) throw Error("not a PyTorch checkpoint: the zip archive holds no data.pkl");
  const std::string dir = pkl->name.substr(0, pkl->name.size() - 8);  // "<dir>/" or ""
  std::unordered_map<std::string, const ZipEntry*> blobs;
  for (const auto& e : entries)
    if (e.name.compare(0, dir.size() + 5, dir + "data/") == 0) blobs[e.name.substr(dir.size() + 5)] = &e;

  std::vector<TensorInfo> out;
  for (auto& t : read_state_dict_pickle(pkl->data, pkl->size)) {
    auto it = blobs.find(t.storage_key);
    if (it == blobs.end())
      throw Error("tensor '" + t.name + "': its storage " + dir + "data/" + t.storage_key + " is missing from the archive");
    const uint64_t elem = dtype_size(t.dtype);
    if (uint64_t(t.storage_numel) > it->second->size / elem)
      throw Error("tensor '" + t.name + "': storage " + t.storage_key + " should hold " +
                  std::to_string(t.storage_numel) + " elements but has " + std::to_string(it->second->size) +
                  " bytes");
    check_view(t.name, t.storage_numel, t.offset, t.shape, t.stride);
    out.push_back({std::move(t.name), t.dtype, std::move(t.shape), std::move(t.stride),
                   it->second->data + t.offset * elem});
  }
  return out;
}

std::vector<TensorInfo> read_safetensors(const uint8_t* data, size_t size) {
  Reader r(data, size, "safetensors file");
  const uint64_t header_len = r.le<uint64_t>();
  if (header_len > r.remaining())
    r.fail("header of " + std::to_string(header_len) + " bytes is longer than the file (truncated download?)");
  const std::string_view json = r.str(header_len);
  const uint8_t* base = data + 8 + header_len;
  std::vector<TensorInfo> out;
  for (auto& e : parse_safetensors_header(json, size - 8 - header_len)) {
    std::vector<int64_t> stride(e.shape.size(), 1);
    for (size_t d = e.shape.size(); d-- > 1;) stride[d - 1] = stride[d] * e.shape[d];
    out.push_back({std::move(e.name), e.dtype, std::move(e.shape), std::move(stride), base + e.begin});
  }
  return out;
}

}  // namespace

std::vector<TensorInfo> read_checkpoint(const uint8_t* data, size_t size) {
  if (is_rwkv_file(data, size)) return read_rwkv_file(data, size);
  if (is_gguf(data, size)) throw Error("a GGUF file holds a whole model: it can only be loaded as one");
  if (size >= 4 && std::memcmp(data, "PK\x03\x04", 4) == 0) return read_pth(data, size);
  if (size >= 9 && data[8] == '{') return read_safetensors(data, size);
  if (size >= 2 && std::memcmp(data, "PK", 2) == 0) return read_pth(data, size);
  throw Error("unrecognised model file: neither a PyTorch .pth (zip), a .safetensors, a GGUF nor a .rwkv file" +
              std::string(size == 0 ? " (it is empty)" : ""));
}

std::vector<TensorInfo> read_checkpoint(const uint8_t* data, size_t size, CheckpointExtras& extras) {
  if (is_gguf(data, size)) return read_gguf(data, size, extras.large, extras.owned, extras.vocab);
  return read_checkpoint(data, size);
}

}  // namespace rwkv
