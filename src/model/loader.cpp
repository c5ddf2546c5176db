#include "model/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "base/bytes.h"
#include "base/dtype.h"
#include "formats/checkpoint.h"

namespace rwkv {
namespace {

constexpr uint64_t kAlign = 64;
// The model's memory comes in blocks of at most this many bytes (a larger tensor gets a
// block of its own): wasm32's allocator refuses single blocks of 2 GB and more.
constexpr uint64_t kBlockBytes = uint64_t(1) << 30;
uint64_t align_up(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The type a tensor is held in when the matrices are held as `matrices` asks (see
// LoadOptions); throws for what cannot be held (quantized vectors and low-rank matrices).
DType held_type(const TensorSlot& slot, const TensorRecord& r, std::optional<DType> matrices) {
  if (slot.vec) {
    if (is_quantized(r.dtype))
      throw Error("tensor '" + r.name + "' is " + dtype_name(r.dtype) + ", but only matrices may be quantized");
    return DType::F32;
  }
  const DType base = r.dtype == DType::F16 ? DType::F32 : r.dtype;
  std::optional<DType> to = matrices;
  if (to && is_quantized(*to) && (!slot.large || slot.shape[1] % kQuantBlock != 0)) to.reset();
  if (!to && is_quantized(base) && !slot.large)
    throw Error("tensor '" + r.name + "' is " + dtype_name(base) + ", but the low-rank matrices cannot be quantized");
  return to ? *to : base;
}

// Bytes of a tensor of `shape` held as `t` (a vector: F32 values).
uint64_t held_bytes_of(const TensorSlot& slot, DType t, int64_t numel) {
  return slot.vec ? uint64_t(numel) * 4 : matrix_bytes(t, uint64_t(slot.shape[0]), uint64_t(slot.shape[1]));
}

// Bytes of a record's data in its storage (contiguous: from its offset on).
uint64_t source_bytes(const TensorRecord& r) {
  if (r.rows) return r.whole_bytes ? r.whole_bytes : uint64_t(r.shape.empty() ? 1 : r.shape[0]) * r.row_bytes;
  if (is_quantized(r.dtype)) return matrix_bytes(r.dtype, uint64_t(r.shape[0]), uint64_t(r.shape[1]));
  return uint64_t(r.numel()) * dtype_size(r.dtype);
}

// The first element of [p, p + n) (as `t`, F32 or BF16) that is NaN or infinite, or -1.
int64_t first_non_finite(DType t, const uint8_t* p, int64_t n) {
  if (t == DType::F32) {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, p + 4 * i, 4);
      if ((b & 0x7F800000u) == 0x7F800000u) return i;
    }
  } else {
    const uint16_t mask = t == DType::BF16 ? 0x7F80 : 0x7C00;
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if ((h & mask) == mask) return i;
    }
  }
  return -1;
}

[[noreturn]] void non_finite(const std::string& name, int64_t at) {
  throw Error("tensor '" + name + "' holds NaN or infinite values (first at element " + std::to_string(at) + ")");
}

void check_scales(const std::string& name, const float* scale, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(scale[i])) throw Error("tensor '" + name + "' holds a NaN or infinite scale (block " + std::to_string(i) + ")");
}

// Each choice's bytes for the tensors of `slots`, stored as `stored` says (by slot), plus
// the vocabulary's; a choice that cannot hold them counts 0 (start() says why).
void plan_choices(ModelPlan& plan, const std::vector<TensorSlot>& slots, const std::vector<const TensorRecord*>& stored) {
  const std::optional<DType> choices[] = {std::nullopt, DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0};
  uint64_t* totals[] = {&plan.as_stored, &plan.f32, &plan.bf16, &plan.q8_0, &plan.q4_0};
  for (int c = 0; c < 5; ++c) {
    uint64_t total = 0;
    try {
      for (size_t i = 0; i < slots.size(); ++i)
        total += align_up(held_bytes_of(slots[i], held_type(slots[i], *stored[i], choices[c]), stored[i]->numel()));
      total += align_up(plan.vocab_bytes);
    } catch (const Error&) {
      total = 0;
    }
    *totals[c] = total;
  }
}

}  // namespace

ModelPlan plan_for_shape(const Config& config) {
  ModelPlan plan;
  plan.config = config;
  Weights weights;
  const std::vector<TensorSlot> slots = model_layout(config, weights);
  std::vector<TensorRecord> records(slots.size());
  std::vector<const TensorRecord*> stored(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    records[i].name = slots[i].name;
    records[i].dtype = DType::BF16;
    records[i].shape = slots[i].shape;
    plan.largest_tensor = std::max(plan.largest_tensor, uint64_t(records[i].numel()) * 2);
    stored[i] = &records[i];
  }
  plan_choices(plan, slots, stored);
  return plan;
}

uint64_t ModelPlan::bytes(std::optional<DType> matrices) const {
  if (!matrices) return as_stored;
  switch (*matrices) {
    case DType::F32: return f32;
    case DType::BF16: return bf16;
    case DType::Q8_0: return q8_0;
    case DType::Q4_0: return q4_0;
    default: return 0;
  }
}

// One tensor the model uses, on its way from the file to its place.
struct StreamLoader::Place {
  int record = -1, slot = -1;
  DType from = DType::F32, to = DType::F32;
  int64_t rows = 1, cols = 1;   // a vector: one row of all its elements
  uint64_t src_begin = 0, src_bytes = 0;  // in its storage
  uint64_t unit = 0;            // source bytes converted at once: a row, or the whole tensor
  bool pass = false;            // the bytes are kept as they are
  uint64_t done = 0;            // source bytes received
  uint64_t held = 0;            // bytes held
  uint64_t offset = 0;          // in the model's block (Output::Model) or the file
  uint8_t* dst = nullptr;
  std::unique_ptr<uint8_t[]> own;  // Output::File: the tensor until it is written
};

StreamLoader::StreamLoader(Output output) : output_(output) {}
StreamLoader::~StreamLoader() = default;

const ModelPlan& StreamLoader::plan() const {
  if (!plan_) throw Error("the model file's header has not been read yet");
  return *plan_;
}

const std::string& StreamLoader::file_header() const {
  if (!image_) throw Error("the converter has not started");
  return *image_->header;
}

std::span<uint8_t> StreamLoader::window() {
  if (failed_ || finished_ || pending_) return {};
  if (input_.empty()) {
    input_.resize(kInputBytes);
    recount();
  }
  return {input_.data(), input_.size()};
}

void StreamLoader::commit(size_t n) {
  if (failed_) throw Error("the model could not be loaded (an earlier error)");
  if (n > input_.size() || pending_) throw Error("commit: more bytes than the window holds");
  try {
    feed(input_.data(), n);
    recount();
  } catch (...) {
    failed_ = true;
    throw;
  }
}

void StreamLoader::write(const uint8_t* data, size_t n) {
  while (n) {
    std::span<uint8_t> w = window();
    if (w.empty()) throw Error(planned() && !started() ? "the loader waits for start()" : "the loader takes no more bytes");
    const size_t k = std::min(n, w.size());
    std::memcpy(w.data(), data, k);
    commit(k);
    data += k;
    n -= k;
  }
}

// Reads n bytes at p. Bytes of tensor data that arrive before start() wait in the input
// buffer (p lies in it then): pending_ counts them.
void StreamLoader::feed(const uint8_t* p, size_t n) {
  while (n) {
    if (ended_) {  // after the container's end: ignored
      position_ += n;
      return;
    }
    const size_t take = size_t(std::min<uint64_t>(n, seg_.bytes - seg_done_));
    if (seg_.kind == Segment::Meta) {
      meta_.insert(meta_.end(), p, p + take);
    } else if (seg_.kind == Segment::Data) {
      if (!started_) {
        pending_at_ = size_t(p - input_.data());
        pending_ = n;
        return;
      }
      feed_data(p, take);
    }
    p += take;
    n -= take;
    position_ += take;
    seg_done_ += take;
    if (seg_done_ == seg_.bytes) next_segment();
  }
}

// The segment after the current one (and any empty ones after that).
void StreamLoader::next_segment() {
  for (;;) {
    if (seg_.kind == Segment::Meta) {
      if (!reader_) {  // the sniffed bytes: pick the reader, then let it read them too
        std::vector<uint8_t> head;
        head.swap(meta_);
        reader_ = open_container(head.data());
        seg_ = reader_->next();
        seg_done_ = 0;
        position_ -= head.size();
        if (seg_.kind == Segment::Data) throw Error("internal: tensor data before the header");
        feed(head.data(), head.size());
        return;
      }
      reader_->meta(meta_.data(), meta_.size());
      meta_.clear();
      if (meta_.capacity() > (1u << 20)) meta_.shrink_to_fit();
      if (!plan_ && reader_->described()) make_plan();
    } else if (seg_.kind == Segment::Data) {
      end_storage();
    }
    seg_ = reader_->next();
    seg_done_ = 0;
    if (seg_.kind == Segment::End) {
      ended_ = true;
      return;
    }
    if (seg_.kind == Segment::Data) {
      if (!plan_) throw Error("internal: tensor data before the header");
      if (started_) begin_storage();
    }
    if (seg_.bytes) return;
  }
}

void StreamLoader::make_plan() {
  const auto& records = reader_->tensors();
  TensorShapes shapes;
  std::unordered_map<std::string, int> by_name;
  for (size_t i = 0; i < records.size(); ++i) {
    shapes.emplace(records[i].name, records[i].shape);
    by_name.emplace(records[i].name, int(i));
  }
  ModelPlan plan;
  plan.config = read_config(shapes);
  model_.reset(new Model());
  model_->config_ = plan.config;
  slots_ = model_layout(plan.config, model_->weights_);
  places_.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const TensorSlot& slot = slots_[i];
    auto it = by_name.find(slot.name);
    if (it == by_name.end())
      throw Error("model file lacks tensor '" + slot.name + "' (expected shape " + shape_string(slot.shape) + ")");
    const TensorRecord& r = records[size_t(it->second)];
    const bool ok = slot.vec ? squeezed(r.shape) == squeezed(slot.shape) : r.shape == slot.shape;
    if (!ok)
      throw Error("tensor '" + slot.name + "': expected shape " + shape_string(slot.shape) + ", found " + shape_string(r.shape));
    Place t;
    t.record = it->second;
    t.slot = int(i);
    t.from = r.dtype;
    if (slot.mat) t.rows = slot.shape[0], t.cols = slot.shape[1];
    else t.cols = r.numel();
    t.src_begin = r.offset;
    t.src_bytes = r.contiguous() || r.rows ? source_bytes(r) : 0;
    if (r.rows) t.unit = r.whole_bytes ? r.whole_bytes : r.row_bytes;
    else if (is_quantized(r.dtype)) t.unit = t.src_bytes;
    else t.unit = uint64_t(t.cols) * dtype_size(r.dtype);
    plan.largest_tensor = std::max(plan.largest_tensor, source_bytes(r));
    places_.push_back(std::move(t));
  }
  if (reader_->vocab_storage() >= 0) plan.vocab_bytes = reader_->storage_bytes()[size_t(reader_->vocab_storage())];
  else plan.vocab_bytes = reader_->vocab_text().size();
  std::vector<const TensorRecord*> stored(slots_.size());
  for (const Place& t : places_) stored[size_t(t.slot)] = &records[size_t(t.record)];
  plan_choices(plan, slots_, stored);
  // The tensors of each storage by offset; a storage whose tensors are strided or overlap
  // is read whole before they are placed.
  const size_t n_storages = reader_->storage_bytes().size();
  by_storage_.assign(n_storages, {});
  buffered_.assign(n_storages, false);
  for (size_t i = 0; i < places_.size(); ++i) {
    const TensorRecord& r = records[size_t(places_[i].record)];
    if (r.storage < 0 || size_t(r.storage) >= n_storages) throw Error("internal: tensor '" + r.name + "' has no storage");
    by_storage_[size_t(r.storage)].push_back(int(i));
    if (!places_[i].src_bytes) buffered_[size_t(r.storage)] = true;
  }
  for (size_t s = 0; s < n_storages; ++s) {
    auto& list = by_storage_[s];
    std::sort(list.begin(), list.end(), [&](int a, int b) { return places_[size_t(a)].src_begin < places_[size_t(b)].src_begin; });
    uint64_t at = 0;
    for (int i : list) {
      const Place& t = places_[size_t(i)];
      if (t.src_begin < at || t.src_begin + t.src_bytes > reader_->storage_bytes()[s]) buffered_[s] = true;
      at = t.src_begin + t.src_bytes;
    }
    if (buffered_[s]) {
      for (int i : list) {
        const TensorRecord& r = records[size_t(places_[size_t(i)].record)];
        if (r.rows || is_quantized(r.dtype))
          throw Error("tensor '" + r.name + "': its data overlaps another tensor's or lies outside its storage");
      }
    }
  }
  plan_ = plan;
}

void StreamLoader::start(const LoadOptions& options, std::string_view vocab, const RwkvMetadata& metadata) {
  if (failed_) throw Error("the model could not be loaded (an earlier error)");
  if (!plan_) throw Error("start(): the model file's header has not been read yet");
  if (started_) throw Error("start(): already started");
  try {
    const auto& records = reader_->tensors();
    std::vector<HeldTensor> held;
    for (Place& t : places_) {
      const TensorSlot& slot = slots_[size_t(t.slot)];
      const TensorRecord& r = records[size_t(t.record)];
      t.to = held_type(slot, r, options.matrices);
      t.held = held_bytes_of(slot, t.to, r.numel());
      t.pass = !r.rows && t.to == r.dtype && !buffered_[size_t(r.storage)];
      held.push_back({slot.name, t.to, slot.vec ? r.shape : slot.shape, nullptr, size_t(t.held)});
      if (slot.mat == &model_->weights_.head) weight_dtype_ = t.to;
    }
    const int vs = reader_->vocab_storage();
    if (output_ == Output::Model) {
      // Blocks of at most kBlockBytes, tensors in order, each whole in one block.
      std::vector<uint64_t> sizes{0};
      std::vector<size_t> block_of;
      auto place = [&](uint64_t bytes) {
        if (sizes.back() && sizes.back() + align_up(bytes) > kBlockBytes) sizes.push_back(0);
        block_of.push_back(sizes.size() - 1);
        const uint64_t offset = sizes.back();
        sizes.back() += align_up(bytes);
        return offset;
      };
      for (Place& t : places_) t.offset = place(t.held);
      const uint64_t vocab_offset = plan_->vocab_bytes ? place(plan_->vocab_bytes) : 0;
      for (uint64_t n : sizes) {
        if (n > SIZE_MAX) throw Error("the model needs a block of " + std::to_string(n) + " bytes, more than this machine addresses");
        model_->blocks_.push_back(Bytes::allocate(size_t(n)));
      }
      for (size_t i = 0; i < places_.size(); ++i) {
        Place& t = places_[i];
        t.dst = model_->blocks_[block_of[i]].data.get() + t.offset;
        HeldTensor& h = held[size_t(t.slot)];
        h.data = t.dst;
        const TensorSlot& slot = slots_[size_t(t.slot)];
        if (slot.vec) {
          *slot.vec = reinterpret_cast<const float*>(t.dst);
        } else {
          *slot.mat = Matrix{t.to, int(t.rows), int(t.cols), t.dst, nullptr};
          if (is_quantized(t.to)) slot.mat->scale = reinterpret_cast<const float*>(t.dst + matrix_value_bytes(t.to, size_t(t.rows), size_t(t.cols)));
        }
      }
      if (plan_->vocab_bytes) {
        vocab_at_ = model_->blocks_[block_of.back()].data.get() + vocab_offset;
        model_->vocab_ = {reinterpret_cast<const char*>(vocab_at_), size_t(plan_->vocab_bytes)};
        // A vocabulary from the header (GGUF) is there now; one in a storage comes later.
        if (vs < 0) std::memcpy(vocab_at_, reader_->vocab_text().data(), reader_->vocab_text().size());
      }
      model_->held_ = std::move(held);
    } else {
      if (vocab.empty() && vs < 0) vocab = reader_->vocab_text();  // from the header (GGUF), or none
      keep_vocab_ = vocab.empty() && vs >= 0;
      image_ = layout_rwkv_file(plan_->config.entries(), held, keep_vocab_ ? plan_->vocab_bytes : vocab.size(), metadata);
      file_size_ = image_->size;
      for (Place& t : places_) t.offset = image_->offsets[size_t(t.slot)];
      if (!vocab.empty()) {  // a vocabulary of the caller's: written as it is, now
        auto copy = std::make_unique<uint8_t[]>(vocab.size());
        std::memcpy(copy.get(), vocab.data(), vocab.size());
        ready_.push_back({image_->offsets.back(), copy.get(), vocab.size()});
        parts_.push_back(std::move(copy));
        parts_bytes_ += vocab.size();
      }
    }
    started_ = true;
    if (seg_.kind == Segment::Data) begin_storage();
    if (pending_) {
      const size_t from = pending_at_, n = pending_;
      pending_ = 0;
      feed(input_.data() + from, n);
    }
    recount();
  } catch (...) {
    failed_ = true;
    throw;
  }
}

void StreamLoader::begin_storage() {
  place_ = 0;
  staging_.clear();
  const int s = seg_.storage;
  if (s >= 0 && size_t(s) < buffered_.size() && buffered_[size_t(s)]) {
    staging_.reserve(size_t(seg_.bytes));
    recount();
  }
}

// The bytes [seg_done_, seg_done_ + n) of the current storage.
void StreamLoader::feed_data(const uint8_t* p, size_t n) {
  const int s = seg_.storage;
  if (s == reader_->vocab_storage()) {
    uint8_t* dst = vocab_at_;
    if (output_ == Output::File && keep_vocab_) {
      if (seg_done_ == 0) {
        parts_.push_back(std::make_unique<uint8_t[]>(size_t(seg_.bytes)));
        parts_bytes_ += size_t(seg_.bytes);
        recount();
      }
      dst = parts_.back().get();
    }
    if (dst) std::memcpy(dst + seg_done_, p, n);
    if (dst && output_ == Output::File && seg_done_ + n == seg_.bytes)
      ready_.push_back({image_->offsets.back(), dst, size_t(seg_.bytes)});
    return;
  }
  if (buffered_[size_t(s)]) {
    staging_.insert(staging_.end(), p, p + n);
    return;
  }
  const auto& list = by_storage_[size_t(s)];
  uint64_t pos = seg_done_;
  while (n && size_t(place_) < list.size()) {
    Place& t = places_[size_t(list[size_t(place_)])];
    if (pos < t.src_begin) {  // bytes between tensors
      const size_t skip = size_t(std::min<uint64_t>(n, t.src_begin - pos));
      p += skip, n -= skip, pos += skip;
      continue;
    }
    const size_t take = size_t(std::min<uint64_t>(n, t.src_begin + t.src_bytes - pos));
    put(t, p, take);
    p += take, n -= take, pos += take;
    if (t.done == t.src_bytes) {
      complete(t);
      ++place_;
    }
  }
}

uint8_t* StreamLoader::acquire(Place& t) {
  if (!t.dst) {
    t.own = std::make_unique<uint8_t[]>(size_t(t.held));
    t.dst = t.own.get();
    parts_bytes_ += size_t(t.held);
    recount();
  }
  return t.dst;
}

// n more source bytes of t: kept as they are, or converted unit by unit (a partial unit
// waits in staging_).
void StreamLoader::put(Place& t, const uint8_t* p, size_t n) {
  uint8_t* dst = acquire(t);
  if (t.pass) {
    std::memcpy(dst + t.done, p, n);
    t.done += n;
    return;
  }
  // A quantized tensor converted whole, or a record's one unit (whole_bytes), goes
  // through staging_, which is aligned for its scales.
  const TensorRecord& r = reader_->tensors()[size_t(t.record)];
  const bool whole = (is_quantized(t.from) && !r.rows) || r.whole_bytes;
  if (!staging_.empty() || whole) {
    if (staging_.capacity() < t.unit) {
      staging_.reserve(size_t(t.unit));
      recount();
    }
    const size_t k = size_t(std::min<uint64_t>(n, t.unit - staging_.size()));
    staging_.insert(staging_.end(), p, p + k);
    p += k, n -= k, t.done += k;
    if (staging_.size() == t.unit) {
      convert_units(t, staging_.data(), int64_t((t.done - t.unit) / t.unit), 1);
      staging_.clear();
    }
  }
  if (const int64_t units = int64_t(n / t.unit); units > 0) {
    convert_units(t, p, int64_t(t.done / t.unit), units);
    const size_t k = size_t(uint64_t(units) * t.unit);
    p += k, n -= k, t.done += k;
  }
  if (n) {
    if (staging_.capacity() < t.unit) {
      staging_.reserve(size_t(t.unit));
      recount();
    }
    staging_.insert(staging_.end(), p, p + n);
    t.done += n;
  }
}

// `count` units of t from `src`, the first being unit `first`, into their place.
void StreamLoader::convert_units(Place& t, const uint8_t* src, int64_t first, int64_t count) {
  const TensorRecord& r = reader_->tensors()[size_t(t.record)];
  const TypeTraits& to = type_traits(t.to);
  const size_t cols = size_t(t.cols), nb = cols / kQuantBlock, rq = matrix_value_bytes(t.to, 1, cols);
  float* scales = to.quantized ? reinterpret_cast<float*>(t.dst + matrix_value_bytes(t.to, size_t(t.rows), cols)) : nullptr;
  row_.resize(cols);
  // Row `row` as float32 in row_ into its place.
  auto store = [&](int64_t row) {
    if (t.to == DType::F32) std::memcpy(t.dst + size_t(row) * cols * 4, row_.data(), cols * 4);
    else to.from_float(row_.data(), int(cols), t.dst + size_t(row) * rq, scales ? scales + size_t(row) * nb : nullptr);
  };
  auto finite = [&](int64_t row) {
    for (size_t i = 0; i < cols; ++i)
      if (!std::isfinite(row_[i])) non_finite(r.name, row * int64_t(cols) + int64_t(i));
  };
  if (r.rows) {
    if (r.whole_bytes) first = 0, count = t.rows;  // the one unit is every row
    std::vector<float> rows(size_t(count) * cols);
    r.rows(src, first, count, rows.data());
    for (int64_t k = 0; k < count; ++k) {
      std::memcpy(row_.data(), rows.data() + size_t(k) * cols, cols * 4);
      finite(first + k);
      store(first + k);
    }
  } else if (is_quantized(t.from)) {  // the whole blob: q part, then the scales
    Matrix m{t.from, int(t.rows), int(t.cols), src,
             reinterpret_cast<const float*>(src + matrix_value_bytes(t.from, size_t(t.rows), cols))};
    check_scales(r.name, m.scale, size_t(t.rows) * nb);
    for (int64_t row = 0; row < t.rows; ++row) {
      m.row(int(row), row_.data());
      store(row);
    }
  } else {
    const TypeTraits& from = type_traits(t.from);
    for (int64_t k = 0; k < count; ++k) {
      from.to_float(src + size_t(k) * t.unit, nullptr, int(cols), row_.data());
      finite(first + k);
      store(first + k);
    }
  }
}

// t has all its bytes: checked (kept bytes), and handed on (Output::File).
void StreamLoader::complete(Place& t) {
  const TensorRecord& r = reader_->tensors()[size_t(t.record)];
  if (t.pass) {
    if (is_quantized(t.to)) {
      check_scales(r.name, reinterpret_cast<const float*>(t.dst + matrix_value_bytes(t.to, size_t(t.rows), size_t(t.cols))),
                   size_t(t.rows) * size_t(t.cols) / kQuantBlock);
    } else if (const int64_t bad = first_non_finite(t.to, t.dst, r.numel()); bad >= 0) {
      non_finite(r.name, bad);
    }
  }
  if (output_ == Output::File) {
    ready_.push_back({t.offset, t.dst, size_t(t.held)});
    parts_.push_back(std::move(t.own));
  }
}

// A storage read whole (its tensors strided or overlapping): each tensor gathered as
// float32 through its strides, then converted row by row.
void StreamLoader::end_storage() {
  const int s = seg_.storage;
  if (s < 0 || s == reader_->vocab_storage() || !buffered_[size_t(s)]) return;
  for (int i : by_storage_[size_t(s)]) {
    Place& t = places_[size_t(i)];
    const TensorRecord& r = reader_->tensors()[size_t(t.record)];
    const TensorInfo info{r.name, r.dtype, r.shape, r.stride, staging_.data() + r.offset};
    std::vector<float> values;
    values.reserve(size_t(r.numel()));
    std::vector<int64_t> idx(r.shape.size(), 0);
    for (int64_t e = 0, n = r.numel(); e < n; ++e) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * r.stride[d];
      values.push_back(element_f32(info, off));
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < r.shape[d]) break;
        idx[d] = 0;
      }
    }
    for (size_t e = 0; e < values.size(); ++e)
      if (!std::isfinite(values[e])) non_finite(r.name, int64_t(e));
    acquire(t);
    const DType from = t.from;
    t.from = DType::F32;
    t.unit = uint64_t(t.cols) * 4;
    convert_units(t, reinterpret_cast<const uint8_t*>(values.data()), 0, t.rows);
    t.from = from;
    t.done = t.src_bytes;
    complete(t);
  }
  staging_.clear();
  staging_.shrink_to_fit();
}

std::optional<StreamLoader::Part> StreamLoader::ready() const {
  if (ready_.empty()) return std::nullopt;
  return ready_.front();
}

void StreamLoader::pop() {
  if (ready_.empty()) throw Error("pop(): no part is ready");
  const Part p = ready_.front();
  ready_.pop_front();
  for (auto it = parts_.begin(); it != parts_.end(); ++it)
    if (it->get() == p.data) {
      parts_bytes_ -= p.size;
      parts_.erase(it);
      break;
    }
  recount();
}

[[noreturn]] void StreamLoader::truncated() const {
  if (position_ == 0) throw Error("unrecognised model file: it is empty");
  std::string where = "in the container's header";
  if (seg_.kind == Segment::Data && plan_) {
    where = "in the data of tensor storage " + std::to_string(seg_.storage);
    if (seg_.storage == reader_->vocab_storage()) where = "in the vocabulary";
    else if (seg_.storage >= 0 && size_t(place_) < by_storage_[size_t(seg_.storage)].size())
      where = "in the data of tensor '" + reader_->tensors()[size_t(places_[size_t(by_storage_[size_t(seg_.storage)][size_t(place_)])].record)].name + "'";
  } else if (plan_) {
    where = "before the end of the container";
  }
  throw Error(std::string(reader_ ? reader_->kind() : "model file") + ": the file ended after " + std::to_string(position_) +
              " bytes, " + where + " (truncated download?)");
}

std::unique_ptr<Model> StreamLoader::finish() {
  if (failed_) throw Error("the model could not be loaded (an earlier error)");
  if (finished_) throw Error("finish(): the model was taken already");
  if (!ended_) {
    failed_ = true;
    truncated();
  }
  finished_ = true;
  for (const Place& t : places_)
    if (t.done != t.src_bytes)
      throw Error("tensor '" + reader_->tensors()[size_t(t.record)].name + "' is missing from the file");
  if (output_ == Output::File) {
    if (!ready_.empty()) throw Error("finish(): parts of the file were not written");
    return nullptr;
  }
  return std::move(model_);
}

void StreamLoader::recount() {
  held_ = input_.capacity() + staging_.capacity() + meta_.capacity() + parts_bytes_ + row_.capacity() * sizeof(float) +
          (model_ ? model_->memory_bytes() : 0);
  peak_ = std::max(peak_, held_);
}

}  // namespace rwkv
