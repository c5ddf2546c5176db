#include "formats/rwkv_writer.h"

#include <unordered_set>

#include "base/error.h"
#include "base/json.h"
#include "formats/rwkv_file.h"

namespace rwkv {
namespace {

using Node = Json::Node;
using Kind = Json::Node::Kind;

// `s` as a JSON string literal. Bytes >= 0x80 pass as they are (names are byte strings,
// the reader takes them back unchanged).
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      out += '\\';
      out += c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
    } else if (uint8_t(c) < 0x20) {
      static const char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[uint8_t(c) >> 4];
      out += hex[uint8_t(c) & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

uint64_t align_up(uint64_t n) { return (n + kRwkvFileAlign - 1) / kRwkvFileAlign * kRwkvFileAlign; }

const uint8_t kZeros[kRwkvFileAlign] = {};

}  // namespace

RwkvMetadata parse_metadata_json(std::string_view json) {
  RwkvMetadata out;
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  const Node root = Json(json, "metadata").parse();
  if (root.kind != Kind::Object) throw Error("metadata must be a JSON object of strings");
  for (size_t i = 0; i < root.keys.size(); ++i) {
    if (root.values[i].kind != Kind::String) throw Error("metadata \"" + root.keys[i] + "\" is not a string");
    for (size_t j = 0; j < i; ++j)
      if (root.keys[j] == root.keys[i]) throw Error("metadata \"" + root.keys[i] + "\" appears twice");
    out.emplace_back(root.keys[i], root.values[i].str);
  }
  return out;
}

RwkvFileImage layout_rwkv_file(const RwkvConfigEntries& config, const std::vector<HeldTensor>& tensors,
                               uint64_t vocab_bytes, const RwkvMetadata& metadata) {
  if (tensors.empty()) throw Error("rwkv file writer: the model lists no tensors");
  std::unordered_set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string what = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second) throw Error("rwkv file writer: " + what + " is listed twice");
    if (rwkv_tensor_bytes(what, t.dtype, t.shape) != t.bytes)
      throw Error("rwkv file writer: " + what + " holds " + std::to_string(t.bytes) + " bytes, not what " +
                  dtype_name(t.dtype) + " " + shape_string(t.shape) + " needs");
  }
  for (size_t i = 0; i < metadata.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (metadata[i].first == metadata[j].first) throw Error("rwkv file writer: metadata \"" + metadata[i].first + "\" appears twice");

  // The JSON holds the offsets, which follow the JSON: lay out from a guess of where the
  // data starts until the header fits in front of it (offsets only grow, so this ends).
  RwkvFileImage img;
  uint64_t data_start = kRwkvFileAlign;
  std::string json;
  for (;;) {
    json.clear();
    json += "{\"architecture\":\"x070\",\"config\":{";
    for (size_t i = 0; i < config.size(); ++i) {
      if (i) json += ',';
      append_json_string(json, config[i].first);
      json += ':' + std::to_string(config[i].second);
    }
    json += "},\"tensors\":{";
    uint64_t at = data_start;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      if (i) json += ',';
      json += "\n";
      append_json_string(json, t.name);
      json += ":{\"dtype\":\"" + std::string(dtype_name(t.dtype)) + "\",\"shape\":[";
      for (size_t d = 0; d < t.shape.size(); ++d) {
        if (d) json += ',';
        json += std::to_string(t.shape[d]);
      }
      json += "],\"offset\":" + std::to_string(at) + ",\"bytes\":" + std::to_string(t.bytes) + "}";
      at = align_up(at + t.bytes);
    }
    json += "\n}";
    if (vocab_bytes)
      json += ",\"vocabulary\":{\"format\":\"" + std::string(kRwkvVocabFormat) + "\",\"offset\":" + std::to_string(at) +
              ",\"bytes\":" + std::to_string(vocab_bytes) + "}";
    json += ",\"metadata\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i) json += ',';
      append_json_string(json, metadata[i].first);
      json += ':';
      append_json_string(json, metadata[i].second);
    }
    json += "}}\n";
    const uint64_t need = align_up(kRwkvFilePrefix + json.size());
    if (need <= data_start) break;
    data_start = need;
  }
  if (json.size() > kRwkvMaxHeaderBytes) throw Error("rwkv file writer: the JSON header would be too large");

  auto header = std::make_unique<std::string>(kRwkvFileMagic, 8);
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) *header += char((v >> (8 * i)) & 0xFF);
  };
  u32(kRwkvFileVersion);
  u32(uint32_t(json.size()));
  *header += json;
  header->resize(data_start, '\0');
  img.header = std::move(header);
  img.parts.push_back({reinterpret_cast<const uint8_t*>(img.header->data()), img.header->size()});
  img.size = img.header->size();
  for (const auto& t : tensors) {
    img.offsets.push_back(align_up(img.size));
    img.size = img.offsets.back() + t.bytes;
  }
  if (vocab_bytes) {
    img.offsets.push_back(align_up(img.size));
    img.size = img.offsets.back() + vocab_bytes;
  }
  return img;
}

RwkvFileImage write_rwkv_file(const RwkvConfigEntries& config, const std::vector<HeldTensor>& tensors,
                              std::string_view vocab, const RwkvMetadata& metadata) {
  RwkvFileImage img = layout_rwkv_file(config, tensors, vocab.size(), metadata);
  uint64_t at = img.parts[0].size;
  auto add = [&](uint64_t offset, const uint8_t* p, size_t n) {
    if (offset > at) img.parts.push_back({kZeros, size_t(offset - at)});
    if (n) img.parts.push_back({p, n});
    at = offset + n;
  };
  for (size_t i = 0; i < tensors.size(); ++i) add(img.offsets[i], tensors[i].data, tensors[i].bytes);
  if (!vocab.empty()) add(img.offsets.back(), reinterpret_cast<const uint8_t*>(vocab.data()), vocab.size());
  return img;
}

}  // namespace rwkv
