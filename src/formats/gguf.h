#pragma once
// GGUF, ggml's model container, as llama.cpp writes RWKV-7 models (docs/format.md#gguf):
// the header (magic "GGUF", version 2 or 3, metadata of every value type, tensor infos,
// alignment), the rwkv7 tensor names mapped back to our checkpoint keys with the inverse
// of llama.cpp's converter transformations, every tensor checked by name and shape
// against the rwkv7.* hyperparameters, the decoders of ggml's block types, and the World
// vocabulary of the metadata.
//
// Two ways in: read_gguf() takes a whole file in memory and gives checkpoint tensors
// (the read_checkpoint path), and the parts below it (parse_gguf_header, gguf_sources,
// gguf_source_to_float, gguf_repack_blocks) let a streaming loader place each tensor as
// its bytes arrive: the header says where every tensor's bytes lie and how they become
// ours.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "formats/checkpoint.h"
#include "formats/container.h"

namespace rwkv {

constexpr uint32_t kGgufDefaultAlignment = 32;

// ggml's tensor types, numbered as in GGUF files.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

// The name of ggml type number `type` ("Q4_K", or "IQ2_XS" and the like for the types
// we cannot read; "type N" for numbers ggml does not have).
std::string ggml_type_name(uint32_t type);
// True for the types this reader decodes: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool ggml_type_readable(uint32_t type);
// Values per block and bytes per block of a readable type.
int ggml_block_size(uint32_t type);
size_t ggml_block_bytes(uint32_t type);
// n values (a multiple of the block size) of readable type `type` at src to float32, as
// ggml's reference dequantize_row_* computes them.
void ggml_to_float(uint32_t type, const uint8_t* src, int64_t n, float* out);

// One metadata value. Integers (and bools) are in `i` (uint64 values above 2^63 - 1 too,
// as their bit pattern), floats in `f`, a string in `str`; an array has `elem` (its
// element type), `count`, and its elements in `ints`, `floats` or `strings` (arrays of
// arrays: only the count).
struct GgufValue {
  uint32_t type = 0;  // gguf_type: 0 UINT8 .. 12 FLOAT64 (9: ARRAY)
  int64_t i = 0;
  double f = 0;
  std::string str;
  uint32_t elem = 0;
  uint64_t count = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml's order: the fastest-varying dimension first
  uint32_t type;
  uint64_t offset;  // from the start of the data section
  uint64_t bytes;   // of its data (ggml_nbytes)
};

struct GgufHeader {
  uint32_t version = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                       // in file order
  uint64_t alignment = kGgufDefaultAlignment;                // general.alignment
  uint64_t data_start = 0;  // file offset of the data section (the header's end, aligned)
  const GgufValue* find(std::string_view key) const;
};

// True when `data` starts with the GGUF magic.
bool is_gguf(const uint8_t* data, size_t size);

// Parses the header at the start of `data`: nullopt when the `size` bytes end before
// the header does (a streaming reader asks again with more), else the header, every
// tensor info checked (known dimensions, sizes without overflow, offsets aligned, unique
// names; a type we cannot read is kept and refused by gguf_sources). Throws rwkv::Error
// naming what is wrong.
std::optional<GgufHeader> try_parse_gguf_header(const uint8_t* data, size_t size);
// As above, for a whole file: a header that does not fit is a truncated file.
GgufHeader parse_gguf_header(const uint8_t* data, size_t size);

// One of our checkpoint tensors, made from (part of) one GGUF tensor.
struct GgufSource {
  std::string key;             // checkpoint key ("blocks.3.att.w1")
  std::vector<int64_t> shape;  // our shape, outermost first ((C, Dw) for att.w1)
  uint32_t type;               // ggml type of the bytes
  uint64_t offset;             // file offset of its first byte
  uint64_t bytes;              // bytes it reads from there
  // The bytes hold the transpose of our (R, K) matrix, stored as K rows of R values
  // (llama.cpp's LoRA matrices); otherwise they are our tensor, row-major.
  bool transposed = false;
  bool large = false;  // one of the matrices the quantized types apply to
};

// The rwkv7 model of a parsed header: its checkpoint tensors with where their bytes lie.
// Checks general.architecture ("rwkv7"), the hyperparameters, and every tensor: each
// expected name present once with the shape and a type we can read, nothing else (a
// GGUF tensor we do not know is an error naming it). file_size: the whole file's size,
// which every tensor must fit in (0: not checked, for a stream whose length is unknown).
std::vector<GgufSource> gguf_sources(const GgufHeader& h, uint64_t file_size);

// A source's bytes (s.bytes of them at src) as our tensor, float32, row-major in our
// shape (numel of s.shape values).
void gguf_source_to_float(const GgufSource& s, const uint8_t* src, float* out);
// A Q8_0 or Q4_0 (rows, cols) matrix in ggml's blocks (an f16 scale before each block's
// values) as our blob of the same type (dtype.h: all values, then the float32 scales),
// value for value.
void gguf_repack_blocks(uint32_t type, const uint8_t* src, int64_t rows, int64_t cols, uint8_t* blob);

// The World vocabulary of the metadata (tokenizer.ggml.model "rwkv": token texts escaped
// as llama.cpp's converter writes them) as the text of a vocabulary file
// (kRwkvVocabFormat: `id b'...' len` lines for the normal tokens); empty when the file
// carries none.
std::string gguf_vocab_text(const GgufHeader& h);

// The streaming reader (formats/container.h): the header read as Meta segments of the
// bytes it needs at least (never past its end, whatever the chunks), then the data
// section as one storage. Records: F32/F16/BF16 tensors as they are; the transposed
// LoRAs and any small tensor of a block type as one unit (TensorRecord::whole_bytes),
// decoded to F32; large matrices of a block type by rows (ggml_to_float), kept as Q8_0 /
// Q4_0 for those types (requantized from the decoded values: the same values for blocks
// written as ggml's reference quantizer writes them) and as BF16 for the others. The
// metadata's vocabulary is the reader's vocab_text().
std::unique_ptr<ContainerReader> make_gguf_reader();

// The tensors of a whole GGUF file in memory as checkpoint tensors: views into `data`
// where the bytes are already ours (F32, F16, BF16: the LoRAs as transposed strided
// views, the fused token-shift mixes one view per mix), else converted into buffers
// appended to `owned`: Q8_0 and Q4_0 repacked into our blobs value for value, the other
// types decoded, then the large matrices encoded as `large` (Q8_0, Q4_0, BF16 or F32)
// and the rest kept as F32. `vocab` receives gguf_vocab_text().
std::vector<TensorInfo> read_gguf(const uint8_t* data, size_t size, DType large,
                                  std::vector<std::vector<uint8_t>>& owned, std::string& vocab);

}  // namespace rwkv
