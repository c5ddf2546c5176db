#pragma once
// Containers read as a stream, front to back, never whole: the readers behind the
// streaming loader (model/loader.h). A container reader is a small state machine that
// says what the next bytes of the stream are (its own structure, which it wants whole,
// bytes to skip, or the bytes of a storage holding tensor data) and, once it has read
// its header, lists every tensor with the storage and offset its bytes come from.
//
// Every container the loader reads has its header before its data: `.pth` (a zip whose
// first entry is data.pkl, the storages as later entries, the central directory last
// and checked against the local headers), `.safetensors` (JSON header first), `.rwkv`
// (docs/format.md, JSON header first), GGUF (formats/gguf.h: header, then the tensor
// data as one storage). Another container plugs in by implementing ContainerReader and
// adding a line to open_container().
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace rwkv {

// One tensor as the container's header describes it.
struct TensorRecord {
  std::string name;             // checkpoint key ("emb.weight", "blocks.0.att.r_k", ...)
  DType dtype;                  // element type as stored (without `rows`: read by the type traits)
  std::vector<int64_t> shape;   // outermost first, as the model wants it
  std::vector<int64_t> stride;  // in elements, same length as shape (contiguous: row-major)
  int storage = 0;              // which storage holds its bytes (ContainerReader::storages())
  uint64_t offset = 0;          // byte offset of element [0,...,0] within that storage
  // A hook for containers whose element types or layouts the traits table does not read
  // (GGUF k-quants, transposed or transformed tensors): when set, the tensor is
  // contiguous rows of `row_bytes` source bytes each (shape[0] rows; a vector is one
  // row), and rows(src, row0, n, out) turns n such rows, starting at row row0, into
  // float32 values (shape[1] per row; a vector's numel). `dtype` then names the type the
  // model keeps when no conversion is asked for (F32, BF16, Q8_0 or Q4_0).
  std::function<void(const uint8_t* src, int64_t row0, int64_t n, float* out)> rows;
  uint64_t row_bytes = 0;
  // With `rows`, for a tensor whose source rows are not ours (a transposed matrix) or do
  // not fill whole blocks: its `whole_bytes` source bytes are one unit, converted once
  // they are all there by rows(src, 0, shape[0], out) (a vector: one row).
  uint64_t whole_bytes = 0;
  bool contiguous() const;
  int64_t numel() const;
};

// What the next bytes of the stream are.
struct Segment {
  enum Kind : uint8_t {
    Meta,  // the container's own structure: handed whole to ContainerReader::meta()
    Skip,  // bytes nobody reads (padding, entries that hold no tensors)
    Data,  // bytes of storage `storage`, from its start (every Data segment is a whole storage)
    End,   // the container is complete; later bytes are ignored
  } kind;
  uint64_t bytes = 0;
  int storage = -1;
};

class ContainerReader {
 public:
  virtual ~ContainerReader() = default;
  // What comes next. Called once per segment: after a Meta segment, once its bytes were
  // handed to meta(); after Skip or Data, once that many bytes went by.
  virtual Segment next() = 0;
  // The bytes of the Meta segment next() asked for. Throws rwkv::Error naming what is wrong.
  virtual void meta(const uint8_t* data, size_t size) = 0;
  // True once the header is read: tensors(), storage_bytes() and vocab_storage() are
  // final from then on, and no Data segment comes before.
  virtual bool described() const = 0;
  // The container's kind, as messages name it: "zip archive", "rwkv file", ...
  virtual const char* kind() const = 0;
  const std::vector<TensorRecord>& tensors() const { return tensors_; }
  // Bytes of each storage (what its Data segment will carry).
  const std::vector<uint64_t>& storage_bytes() const { return storage_bytes_; }
  // The storage holding an embedded vocabulary (.rwkv), or -1.
  int vocab_storage() const { return vocab_storage_; }
  // A vocabulary the header carries (GGUF's metadata), in kRwkvVocabFormat, or empty.
  const std::string& vocab_text() const { return vocab_text_; }

 protected:
  std::vector<TensorRecord> tensors_;
  std::vector<uint64_t> storage_bytes_;
  int vocab_storage_ = -1;
  std::string vocab_text_;
};

// Bytes open_container needs to tell the containers apart.
constexpr size_t kContainerSniffBytes = 9;

// A reader for the container whose first kContainerSniffBytes bytes are `head`; it
// starts at byte 0 (the caller hands it those bytes again). Throws rwkv::Error for an
// unknown container.
std::unique_ptr<ContainerReader> open_container(const uint8_t* head);

}  // namespace rwkv
