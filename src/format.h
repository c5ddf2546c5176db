#pragma once
// Our own model file format, ".rwkv" (docs/format.md): a small header (magic, version,
// JSON length), a JSON header (architecture, config, tensor table, optional vocabulary,
// metadata), then every tensor and the vocabulary at 64-byte-aligned offsets, so that a
// file read into a 64-aligned buffer is used in place. Version 1.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tensor.h"

namespace rwkv {

class Model;

constexpr uint32_t kRwkvFileVersion = 1;
constexpr size_t kRwkvFileAlign = 64;
constexpr size_t kRwkvFilePrefix = 16;  // magic (8), version (4), JSON length (4)
// The first 8 bytes of every .rwkv file: 0x89 'R' 'W' 'K' 'V' '\r' '\n' 0x1A.
inline constexpr char kRwkvFileMagic[9] = "\x89RWKV\r\n\x1a";
// The vocabulary format a writer uses and a reader accepts: the text of the World
// vocabulary file (rwkv_vocab_v20230424.txt), as Tokenizer::from_vocab_text reads it.
inline constexpr std::string_view kRwkvVocabFormat = "rwkv-vocab-txt";

// True when `data` starts with the .rwkv magic (whatever follows).
bool is_rwkv_file(const uint8_t* data, size_t size);

// The tensors of a .rwkv file held in memory, as views into `data` (which must outlive
// them): F32, F16, BF16 with contiguous strides; Q8_0 and Q4_0 as shape (rows, cols),
// strides (cols, 1) and `data` at the start of the blob quant.h describes. Checks the
// whole header (every entry in range, aligned, not overlapping, of the right size) and
// throws rwkv::Error naming what is wrong.
std::vector<TensorInfo> read_rwkv_file(const uint8_t* data, size_t size);

// The vocabulary embedded in a .rwkv file (a view into `data`); empty when the bytes are
// not a .rwkv file or the file carries no vocabulary. A .rwkv file with a damaged header
// throws as read_rwkv_file does.
std::string_view rwkv_file_vocab(const uint8_t* data, size_t size);

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
};

// Lays out `model` (every tensor of Model::tensors(), as held: converted or quantized
// ones included) with an optional vocabulary (`vocab`, the text format above; checked by
// parsing it, and it may not have more tokens than the model) and metadata.
RwkvFileImage write_rwkv_file(const Model& model, std::string_view vocab = {}, const RwkvMetadata& metadata = {});

}  // namespace rwkv
