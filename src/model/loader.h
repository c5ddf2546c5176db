#pragma once
// The streaming loader: a model file read as it arrives, chunk by chunk, never whole.
// Each tensor is converted to the precision asked for straight into its final place, so
// that memory while loading is the final model plus a small input buffer and at most one
// tensor's worth of staging, never the file.
//
//   StreamLoader L;                      // or StreamLoader(StreamLoader::Output::File)
//   while (bytes remain) {
//     std::span<uint8_t> w = L.window(); // where the next bytes go (a caller that holds
//     copy up to w.size() bytes to w;    //   the chunk in other memory writes there)
//     L.commit(n);
//     if (L.planned() && !L.started()) L.start(options);  // after the header: the plan
//   }
//   std::unique_ptr<Model> m = L.finish();
//
// The file's container is told by its first bytes; containers are read by the readers of
// formats/container.h (.pth, .safetensors, .rwkv; a GGUF reader plugs in there as one
// more ContainerReader: header first, tensor data in offset order, TensorRecord::rows for
// element types and layouts of its own). After the container's header, plan() says what
// the model is and how many bytes it takes for each precision, before any tensor data
// and before anything large is allocated: the caller picks the precision (start()).
//
// Output::File (the converter) writes a .rwkv file (docs/format.md) instead of holding
// the model: file_header() after start(), then each tensor as it is complete (ready(),
// written at its offset in the file, then pop()), so that only the tensor being converted
// is held.
//
// Every failure throws rwkv::Error naming what is wrong; the loader is then spent and its
// destructor frees everything it allocated.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/container.h"
#include "formats/rwkv_writer.h"
#include "model/model.h"

namespace rwkv {

// What a file's header says about the model: its dimensions, and the bytes the model
// takes (weights, vectors and an embedded vocabulary, 64-byte aligned) for each way of
// holding the matrices.
struct ModelPlan {
  Config config;
  uint64_t as_stored = 0;  // LoadOptions::matrices unset: as in the file (F16 becomes F32)
  uint64_t f32 = 0, bf16 = 0, q8_0 = 0, q4_0 = 0;
  uint64_t vocab_bytes = 0;      // of the vocabulary embedded in the file (.rwkv), or 0
  uint64_t largest_tensor = 0;   // bytes of the file's largest tensor
  uint64_t bytes(std::optional<DType> matrices) const;
};

// The plan of a model of `config`'s dimensions stored as bf16 (as the published
// checkpoints are), without a file: what each way of holding it would take.
ModelPlan plan_for_shape(const Config& config);

class StreamLoader {
 public:
  enum class Output { Model, File };
  // Bytes of the input buffer the caller writes into (window()).
  static constexpr size_t kInputBytes = size_t(4) << 20;

  explicit StreamLoader(Output output = Output::Model);
  ~StreamLoader();
  StreamLoader(const StreamLoader&) = delete;
  StreamLoader& operator=(const StreamLoader&) = delete;

  // Where the next bytes of the file go: up to size() of them. Empty while the loader
  // waits for start() (the header is read, the rest must wait for the plan's choice).
  std::span<uint8_t> window();
  // `n` bytes (at most window().size()) were written at window().data(): reads them.
  void commit(size_t n);
  // Copies `n` bytes through window() and commit() (start() must come in time).
  void write(const uint8_t* data, size_t n);

  bool planned() const { return plan_.has_value(); }
  const ModelPlan& plan() const;
  bool started() const { return started_; }
  // How to hold the weights; allocates the model (Output::Model). From planned() on, once.
  // Output::File: `vocab` (in kRwkvVocabFormat; empty keeps the one embedded in the file,
  // if any; the caller checks it fits the model) and `metadata` go into the file.
  void start(const LoadOptions& options, std::string_view vocab = {}, const RwkvMetadata& metadata = {});

  // From start() on: how the head matrix is held (what a model's weight_dtype() says).
  DType weight_dtype() const { return weight_dtype_; }
  // Output::File, from start() on: the file's size and its first bytes (magic, JSON header,
  // padding up to the first tensor).
  uint64_t file_size() const { return file_size_; }
  const std::string& file_header() const;
  // Output::File: the next part of the file that is complete, or none; it stays valid
  // until pop(), which frees it.
  struct Part {
    uint64_t offset;  // in the file
    const uint8_t* data;
    size_t size;
  };
  std::optional<Part> ready() const;
  void pop();

  // After the last byte. Output::Model: the model (once); Output::File: checks that every
  // part went out (returns null). Throws when the file ended early.
  std::unique_ptr<Model> finish();

  // Bytes read so far, and bytes this loader holds now / held at most (the model or the
  // parts not yet written, buffers, metadata), as counted by its own allocations.
  uint64_t position() const { return position_; }
  size_t held_bytes() const { return held_; }
  size_t peak_bytes() const { return peak_; }

 private:
  struct Place;
  void feed(const uint8_t* p, size_t n);
  void feed_data(const uint8_t* p, size_t n);
  void next_segment();
  void make_plan();
  void begin_storage();
  void end_storage();
  void put(Place& t, const uint8_t* p, size_t n);
  void convert_units(Place& t, const uint8_t* src, int64_t first, int64_t count);
  void complete(Place& t);
  uint8_t* acquire(Place& t);
  void recount();
  [[noreturn]] void truncated() const;

  Output output_;
  std::unique_ptr<ContainerReader> reader_;
  Segment seg_{Segment::Meta, kContainerSniffBytes};
  uint64_t seg_done_ = 0;                // bytes of seg_ read
  std::vector<uint8_t> meta_;            // the Meta segment so far (or the sniffed bytes)
  std::vector<uint8_t> input_;           // what window() hands out
  size_t pending_ = 0, pending_at_ = 0;  // input bytes not yet read (waiting for start())
  uint64_t position_ = 0;
  DType weight_dtype_ = DType::F32;
  bool ended_ = false, started_ = false, failed_ = false, finished_ = false;

  std::optional<ModelPlan> plan_;
  std::vector<TensorSlot> slots_;
  std::unique_ptr<Model> model_;         // Output::Model: being filled
  std::vector<Place> places_;            // the tensors read, by TensorRecord index
  std::vector<std::vector<int>> by_storage_;  // places in each storage, by offset
  std::vector<bool> buffered_;           // storages read whole before their tensors
  std::vector<uint8_t> staging_;         // a partial unit, or a buffered storage
  int place_ = 0;                        // next place of the current storage
  std::string_view vocab_in_file_;       // Output::Model: the embedded vocabulary
  uint8_t* vocab_at_ = nullptr;

  // Output::File
  std::optional<RwkvFileImage> image_;
  std::vector<uint64_t> file_offsets_;   // by slot; the vocabulary's last
  uint64_t file_size_ = 0;
  bool keep_vocab_ = false;
  std::deque<Part> ready_;
  std::vector<std::unique_ptr<uint8_t[]>> parts_;  // owners of ready_'s data, in the same order

  std::vector<float> row_;               // one row being converted
  size_t parts_bytes_ = 0;               // Output::File: parts allocated, not yet popped
  size_t held_ = 0, peak_ = 0;
};

}  // namespace rwkv
