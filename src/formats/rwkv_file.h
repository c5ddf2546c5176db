#pragma once
// Our own model file format, ".rwkv" (docs/format.md): a small header (magic, version,
// JSON length), a JSON header (architecture, config, tensor table, optional vocabulary,
// metadata), then every tensor and the vocabulary at 64-byte-aligned offsets, so that a
// file read into a 64-aligned buffer is used in place. Version 1.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/checkpoint.h"

namespace rwkv {

constexpr uint32_t kRwkvFileVersion = 1;
constexpr size_t kRwkvFileAlign = 64;
constexpr size_t kRwkvFilePrefix = 16;  // magic (8), version (4), JSON length (4)
// The JSON header's limit: far above any model's table (a 32-layer one needs ~200 KB).
constexpr uint32_t kRwkvMaxHeaderBytes = 64u << 20;
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

// The table of a .rwkv file: its tensors (shapes, types, contiguous strides; `data` null)
// with the file offset of each, and where the vocabulary lies.
struct RwkvFileTable {
  std::vector<TensorInfo> tensors;
  std::vector<uint64_t> offsets;  // of each tensor, in the file
  bool has_vocab = false;
  uint64_t vocab_offset = 0, vocab_bytes = 0;
  uint64_t header_end = 0;        // kRwkvFilePrefix + the JSON header's length
};

// The JSON header's length, from the file's first kRwkvFilePrefix bytes (checked: magic,
// version, a plausible length).
uint32_t rwkv_header_bytes(const uint8_t* data, size_t size);

// The table from the file's first bytes (`size` at least the prefix and the JSON header),
// every entry checked against a file of `file_size` bytes as read_rwkv_file checks it.
RwkvFileTable read_rwkv_table(const uint8_t* data, size_t size, uint64_t file_size);

// The vocabulary embedded in a .rwkv file (a view into `data`); empty when the bytes are
// not a .rwkv file or the file carries no vocabulary. A .rwkv file with a damaged header
// throws as read_rwkv_file does.
std::string_view rwkv_file_vocab(const uint8_t* data, size_t size);

// Bytes a tensor of `dtype` and `shape` takes in a .rwkv file (quantized: its blob), or
// throws rwkv::Error naming `what` when the shape is invalid for the type or too large.
uint64_t rwkv_tensor_bytes(const std::string& what, DType dtype, const std::vector<int64_t>& shape);

}  // namespace rwkv
