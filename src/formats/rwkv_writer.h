#pragma once
// The writer of our own model file format, ".rwkv" (docs/format.md; the reader is
// rwkv_file.h): lays out tensors that live in memory as a list of byte ranges to write
// one after the other, without another copy of the weights.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/checkpoint.h"

namespace rwkv {

// Metadata: string keys and string values, kept in order.
using RwkvMetadata = std::vector<std::pair<std::string, std::string>>;
// A JSON object of string values (`{"source": "x.pth"}`) as metadata; "" gives none.
// Throws rwkv::Error for anything else (other value types, duplicated keys).
RwkvMetadata parse_metadata_json(std::string_view json);

// A .rwkv file as a list of byte ranges to write one after the other: the header (owned
// here), then each tensor's bytes where the model holds them, zero padding (a static
// buffer) between them, and the vocabulary last. No second copy of the weights is made;
// the parts stay valid while the model, the vocabulary bytes and this object live.
struct RwkvFileImage {
  struct Part {
    const uint8_t* data;
    size_t size;
  };
  // Magic, version, length, JSON, zero padding up to the first entry. Held by pointer so
  // that parts[0] stays valid when the image moves (and the image cannot be copied).
  std::unique_ptr<const std::string> header;
  std::vector<Part> parts;
  uint64_t size = 0;         // sum of the parts' sizes: the file's size
  std::vector<uint64_t> offsets;  // where each tensor starts in the file, then the vocabulary
};

// The config entries of the JSON header, in order: ("n_layer", 12), ("n_embd", 768), ...
using RwkvConfigEntries = std::vector<std::pair<std::string, int64_t>>;

// Lays out `tensors` (as a model holds them: converted or quantized ones included; the
// bytes stay where they are) with the config, an optional vocabulary (`vocab`, in
// kRwkvVocabFormat; the caller checks it fits the model) and metadata.
RwkvFileImage write_rwkv_file(const RwkvConfigEntries& config, const std::vector<HeldTensor>& tensors,
                              std::string_view vocab = {}, const RwkvMetadata& metadata = {});

// The same layout for tensors not in memory yet (their `data` is ignored) and a
// vocabulary of `vocab_bytes`: the header (parts[0]), `offsets` and `size`, for a writer
// that writes each tensor at its offset as it becomes available.
RwkvFileImage layout_rwkv_file(const RwkvConfigEntries& config, const std::vector<HeldTensor>& tensors,
                               uint64_t vocab_bytes, const RwkvMetadata& metadata = {});

}  // namespace rwkv
