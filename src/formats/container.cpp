#include "formats/gguf.h"
#include "formats/container.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "base/bytes.h"
#include "formats/checkpoint.h"
#include "formats/pickle.h"
#include "formats/rwkv_file.h"

namespace rwkv {

bool TensorRecord::contiguous() const {
  int64_t expect = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

namespace {

std::vector<int64_t> row_major(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) stride[d - 1] = stride[d] * shape[d];
  return stride;
}

template <typename T>
T le_at(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A reader whose data are storages at known offsets, one after the other in offset order
// (.safetensors, .rwkv): Skip over the gaps, Data for each storage, End after the last.
class TableReader : public ContainerReader {
 protected:
  // Orders the storages by `starts` (absolute offsets) and refuses overlaps.
  void lay_out(std::vector<uint64_t> starts, const char* what) {
    order_.resize(starts.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = int(i);
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) { return starts[a] < starts[b]; });
    starts_ = std::move(starts);
    uint64_t at = header_end_;
    for (int s : order_) {
      if (storage_bytes_[s] == 0) continue;
      if (starts_[s] < at)
        throw Error(std::string(what) + ": the data of tensor '" + name_of(s) + "' overlaps what comes before it");
      at = starts_[s] + storage_bytes_[s];
    }
  }
  Segment data_segment() {
    while (next_ < order_.size() && storage_bytes_[order_[next_]] == 0) ++next_;
    if (next_ == order_.size()) return {Segment::End};
    const int s = order_[next_];
    if (at_ < starts_[s]) {
      const uint64_t gap = starts_[s] - at_;
      at_ = starts_[s];
      return {Segment::Skip, gap};
    }
    ++next_;
    at_ += storage_bytes_[s];
    return {Segment::Data, storage_bytes_[s], s};
  }
  std::string name_of(int s) const { return s < int(tensors_.size()) ? tensors_[s].name : "vocabulary"; }
  uint64_t header_end_ = 0, at_ = 0;
  std::vector<int> order_;
  std::vector<uint64_t> starts_;
  size_t next_ = 0;
};

class SafetensorsReader : public TableReader {
 public:
  Segment next() override {
    if (stage_ == 0) return {Segment::Meta, 8};
    if (stage_ == 1) return {Segment::Meta, header_len_};
    return data_segment();
  }
  void meta(const uint8_t* data, size_t size) override {
    if (stage_ == 0) {
      header_len_ = le_at<uint64_t>(data);
      if (header_len_ > (uint64_t(64) << 20))
        throw Error("safetensors file: header of " + std::to_string(header_len_) + " bytes is implausibly large");
      stage_ = 1;
      return;
    }
    header_end_ = at_ = 8 + header_len_;
    std::vector<uint64_t> starts;
    for (auto& e : parse_safetensors_header({reinterpret_cast<const char*>(data), size}, UINT64_MAX)) {
      TensorRecord t{e.name, e.dtype, e.shape, row_major(e.shape), int(tensors_.size()), 0, {}, 0};
      tensors_.push_back(std::move(t));
      storage_bytes_.push_back(e.end - e.begin);
      starts.push_back(header_end_ + e.begin);
    }
    lay_out(std::move(starts), "safetensors file");
    stage_ = 2;
  }
  bool described() const override { return stage_ == 2; }
  const char* kind() const override { return "safetensors file"; }

 private:
  int stage_ = 0;
  uint64_t header_len_ = 0;
};

class RwkvReader : public TableReader {
 public:
  Segment next() override {
    if (stage_ == 0) return {Segment::Meta, kRwkvFilePrefix};
    if (stage_ == 1) return {Segment::Meta, header_len_};
    return data_segment();
  }
  void meta(const uint8_t* data, size_t size) override {
    if (stage_ == 0) {
      std::memcpy(prefix_, data, kRwkvFilePrefix);
      header_len_ = rwkv_header_bytes(data, size);
      stage_ = 1;
      return;
    }
    std::vector<uint8_t> head(kRwkvFilePrefix + size);
    std::memcpy(head.data(), prefix_, kRwkvFilePrefix);
    std::memcpy(head.data() + kRwkvFilePrefix, data, size);
    RwkvFileTable table = read_rwkv_table(head.data(), head.size(), UINT64_MAX);
    header_end_ = at_ = table.header_end;
    std::vector<uint64_t> starts;
    for (size_t i = 0; i < table.tensors.size(); ++i) {
      const TensorInfo& t = table.tensors[i];
      storage_bytes_.push_back(rwkv_tensor_bytes("tensor '" + t.name + "'", t.dtype, t.shape));
      tensors_.push_back({t.name, t.dtype, t.shape, t.stride, int(i), 0, {}, 0});
      starts.push_back(table.offsets[i]);
    }
    if (table.has_vocab) {
      vocab_storage_ = int(storage_bytes_.size());
      storage_bytes_.push_back(table.vocab_bytes);
      starts.push_back(table.vocab_offset);
    }
    lay_out(std::move(starts), "rwkv file");
    stage_ = 2;
  }
  bool described() const override { return stage_ == 2; }
  const char* kind() const override { return "rwkv file"; }

 private:
  int stage_ = 0;
  uint32_t header_len_ = 0;
  uint8_t prefix_[kRwkvFilePrefix] = {};
};

// The zip of a PyTorch checkpoint, read front to back: each entry's local header, then its
// bytes. torch.save writes data.pkl first, then the storages (data/KEY), each entry's sizes
// in a data descriptor after its bytes (flag bit 3): a storage's size comes from data.pkl,
// the small entries are read up to their descriptor. The central directory at the end is
// checked against what the local headers said.
class ZipReader : public ContainerReader {
 public:
  Segment next() override {
    position_ += last_;
    const Segment s = step();
    last_ = s.bytes;
    return s;
  }
  bool described() const override { return described_; }
  const char* kind() const override { return "zip archive"; }

  void meta(const uint8_t* p, size_t n) override {
    switch (state_) {
      case State::Signature: return signature(le_at<uint32_t>(p));
      case State::LocalFixed: return local_fixed(p);
      case State::LocalNames: return local_names(p, n);
      case State::Scan: return scan(*p);
      case State::Whole: return whole(p, n);
      case State::Descriptor: return descriptor(p, n);
      case State::CentralFixed: {
        central_ = {le_at<uint16_t>(p + 6), le_at<uint32_t>(p + 16), le_at<uint32_t>(p + 20), le_at<uint16_t>(p + 24),
                    le_at<uint16_t>(p + 26), le_at<uint16_t>(p + 28), le_at<uint32_t>(p + 38)};
        want_ = uint64_t(central_.name_len) + central_.extra_len + central_.comment_len;
        state_ = State::CentralNames;
        return;
      }
      case State::CentralNames: return central_names(p);
      case State::Zip64Size:
        want_ = le_at<uint64_t>(p);
        if (want_ > 4096) fail("ZIP64 end record of " + std::to_string(want_) + " bytes");
        state_ = State::Zip64Rest;
        return;
      case State::Zip64Rest:
      case State::Locator: state_ = State::Signature; return;
      case State::EndRecord:
        if (le_at<uint16_t>(p + 6) != 0xFFFF && le_at<uint16_t>(p + 6) != centrals_)
          fail("the end record counts " + std::to_string(le_at<uint16_t>(p + 6)) + " entries, the directory holds " +
               std::to_string(centrals_));
        want_ = le_at<uint16_t>(p + 16);
        state_ = State::Comment;
        return;
      case State::Comment: state_ = State::Done; return;
      default: fail("internal: unexpected bytes");
    }
  }

 private:
  uint64_t position_ = 0;  // where the segment next() returned last begins
  enum class State { Signature, LocalFixed, LocalNames, Scan, Whole, Data, Skip, Descriptor, CentralFixed, CentralNames,
                     Zip64Size, Zip64Rest, Locator, EndRecord, Comment, Done };
  struct Local { std::string name; uint64_t offset, size; };
  struct Central { uint16_t method; uint32_t csize, usize; uint16_t name_len, extra_len, comment_len; uint32_t local; };

  [[noreturn]] static void fail(const std::string& msg) { throw Error("zip archive: " + msg); }

  Segment step() {
    switch (state_) {
      case State::Signature: return {Segment::Meta, 4};
      case State::LocalFixed: return {Segment::Meta, 26};
      case State::LocalNames:
      case State::CentralNames:
      case State::Zip64Rest:
      case State::Comment:
      case State::Whole: return {Segment::Meta, want_};
      case State::Scan: return {Segment::Meta, 1};
      case State::Descriptor: return {Segment::Meta, want_};
      case State::Data:
      case State::Skip: {
        const Segment s{state_ == State::Data ? Segment::Data : Segment::Skip, want_, storage_};
        end_entry();
        return s;
      }
      case State::CentralFixed: return {Segment::Meta, 42};
      case State::Zip64Size: return {Segment::Meta, 8};
      case State::Locator: return {Segment::Meta, 16};
      case State::EndRecord: return {Segment::Meta, 18};
      case State::Done: return {Segment::End};
    }
    fail("internal: bad state");
  }

  void signature(uint32_t sig) {
    if (sig == 0x04034b50) {
      if (in_directory_) fail("a local header after the central directory");
      entry_offset_ = position_;
      state_ = State::LocalFixed;
    } else if (sig == 0x02014b50) {
      if (!in_directory_) {
        in_directory_ = true;
        for (size_t s = 0; s < arrived_.size(); ++s)
          if (!arrived_[s]) fail("storage '" + storage_keys_[s] + "' of tensor data is missing from the archive");
      }
      state_ = State::CentralFixed;
    } else if (sig == 0x06064b50 && in_directory_) {
      state_ = State::Zip64Size;
    } else if (sig == 0x07064b50 && in_directory_) {
      state_ = State::Locator;
    } else if (sig == 0x06054b50 && in_directory_) {
      if (centrals_ != locals_.size())
        fail("the central directory lists " + std::to_string(centrals_) + " entries, the archive holds " +
             std::to_string(locals_.size()));
      state_ = State::EndRecord;
    } else {
      fail("unexpected bytes at offset " + std::to_string(position_) + " (truncated or damaged archive)");
    }
  }

  void local_fixed(const uint8_t* p) {
    flags_ = le_at<uint16_t>(p + 2);
    const uint16_t method = le_at<uint16_t>(p + 4);
    csize_ = le_at<uint32_t>(p + 14);
    usize_ = le_at<uint32_t>(p + 18);
    if (method != 0) fail("an entry is compressed (method " + std::to_string(method) + "); only stored entries are supported, as torch.save writes them");
    want_ = uint64_t(le_at<uint16_t>(p + 22)) + le_at<uint16_t>(p + 24);
    name_len_ = le_at<uint16_t>(p + 22);
    state_ = State::LocalNames;
  }

  void local_names(const uint8_t* p, size_t n) {
    name_.assign(reinterpret_cast<const char*>(p), name_len_);
    Reader extra(p + name_len_, n - name_len_, "zip extra field");
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.le<uint16_t>(), len = extra.le<uint16_t>();
      Reader field(extra.take(len), len, "ZIP64 extra field");
      if (id != 0x0001) continue;
      if (usize_ == 0xFFFFFFFF) usize_ = field.le<uint64_t>();
      if (csize_ == 0xFFFFFFFF) csize_ = field.le<uint64_t>();
    }
    descriptor_ = flags_ & 8;
    if (!descriptor_ && csize_ != usize_) fail("entry '" + name_ + "' has inconsistent sizes");
    const bool is_pkl = name_.size() >= 8 && name_.compare(name_.size() - 8, 8, "data.pkl") == 0 &&
                        (name_.size() == 8 || name_[name_.size() - 9] == '/');
    storage_ = -1;
    if (is_pkl && !pkl_seen_) {
      pkl_seen_ = true;
      dir_ = name_.substr(0, name_.size() - 8);
      begin_whole(true);
      return;
    }
    if (pkl_seen_) {
      const std::string prefix = dir_ + "data/";
      if (name_.compare(0, prefix.size(), prefix) == 0) {
        auto it = storage_index_.find(name_.substr(prefix.size()));
        if (it != storage_index_.end()) storage_ = it->second;
      }
    } else if (name_.find("/data/") != std::string::npos || name_.compare(0, 5, "data/") == 0) {
      fail("entry '" + name_ + "' comes before data.pkl: this archive cannot be read as a stream");
    }
    if (storage_ >= 0) {
      if (arrived_[storage_]) fail("storage '" + name_ + "' appears twice");
      arrived_[storage_] = true;
      const uint64_t need = storage_bytes_[storage_];
      if (!descriptor_ && usize_ < need)
        fail("entry '" + name_ + "' holds " + std::to_string(usize_) + " bytes but its tensors need " + std::to_string(need));
      if (!descriptor_ && usize_ > need) storage_bytes_[storage_] = usize_;
      want_ = storage_bytes_[storage_];
      state_ = State::Data;
    } else if (descriptor_) {
      begin_whole(false);
    } else {
      want_ = usize_;
      state_ = State::Skip;
    }
  }

  // An entry read whole (data.pkl) or skipped, when its size is known or not.
  void begin_whole(bool keep) {
    keep_ = keep;
    buffer_.clear();
    if (descriptor_) {
      state_ = State::Scan;
    } else if (keep) {
      if (usize_ > kMaxMetaEntry) fail("entry '" + name_ + "' of " + std::to_string(usize_) + " bytes is too large");
      want_ = usize_;
      state_ = State::Whole;
    } else {
      want_ = usize_;
      state_ = State::Skip;
    }
  }

  // One more byte of an entry whose size comes after it: done when the bytes end with a
  // data descriptor (signature, CRC, two 32-bit sizes) giving the size of what precedes it.
  void scan(uint8_t b) {
    buffer_.push_back(b);
    const size_t n = buffer_.size();
    if (n > kMaxMetaEntry + 16) fail("entry '" + name_ + "' is too large for a metadata entry");
    if (n < 16) return;
    const uint8_t* d = buffer_.data() + n - 16;
    if (le_at<uint32_t>(d) != 0x08074b50 || le_at<uint32_t>(d + 8) != n - 16 || le_at<uint32_t>(d + 12) != n - 16) return;
    buffer_.resize(n - 16);
    finish_entry(buffer_.size());
    if (keep_) read_pickle();
    state_ = State::Signature;
  }

  void whole(const uint8_t* p, size_t n) {
    buffer_.assign(p, p + n);
    finish_entry(n);
    read_pickle();
    state_ = State::Signature;
  }

  void read_pickle() {
    std::unordered_map<std::string, uint64_t> numel_bytes;
    for (auto& t : read_state_dict_pickle(buffer_.data(), buffer_.size())) {
      const uint64_t elem = dtype_size(t.dtype);
      check_view(t.name, t.storage_numel, t.offset, t.shape, t.stride);
      auto [it, fresh] = storage_index_.try_emplace(t.storage_key, int(storage_bytes_.size()));
      if (fresh) {
        storage_bytes_.push_back(uint64_t(t.storage_numel) * elem);
        storage_keys_.push_back(t.storage_key);
      } else {
        storage_bytes_[it->second] = std::max(storage_bytes_[it->second], uint64_t(t.storage_numel) * elem);
      }
      tensors_.push_back({t.name, t.dtype, t.shape, t.stride, it->second, uint64_t(t.offset) * elem, {}, 0});
    }
    arrived_.assign(storage_bytes_.size(), false);
    buffer_.clear();
    buffer_.shrink_to_fit();
    described_ = true;
  }

  // After a Data or Skip segment: the entry's descriptor, if it has one.
  void end_entry() {
    finish_entry(want_);
    if (descriptor_) {
      want_ = 16;
      state_ = State::Descriptor;
    } else {
      state_ = State::Signature;
    }
  }

  void descriptor(const uint8_t* p, size_t n) {
    const uint64_t size = locals_.back().size;
    if (le_at<uint32_t>(p) != 0x08074b50) fail("entry '" + locals_.back().name + "' lacks its data descriptor");
    if (n == 16 && le_at<uint32_t>(p + 8) == size && le_at<uint32_t>(p + 12) == size) {
      state_ = State::Signature;
    } else if (n == 16) {
      std::memcpy(descriptor_head_, p, 16);
      want_ = 8;  // the ZIP64 form: 64-bit sizes
    } else {
      uint8_t d[24];
      std::memcpy(d, descriptor_head_, 16);
      std::memcpy(d + 16, p, 8);
      if (le_at<uint64_t>(d + 8) != size || le_at<uint64_t>(d + 16) != size)
        fail("entry '" + locals_.back().name + "': its data descriptor gives another size than " + std::to_string(size));
      state_ = State::Signature;
    }
  }

  void finish_entry(uint64_t size) {
    if (!descriptor_ && size != usize_) fail("entry '" + name_ + "' has a wrong size");
    locals_.push_back({name_, entry_offset_, size});
    by_offset_[entry_offset_] = locals_.size() - 1;
  }

  void central_names(const uint8_t* p) {
    const std::string name(reinterpret_cast<const char*>(p), central_.name_len);
    uint64_t csize = central_.csize, usize = central_.usize, local = central_.local;
    Reader extra(p + central_.name_len, central_.extra_len, "zip extra field");
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.le<uint16_t>(), len = extra.le<uint16_t>();
      Reader field(extra.take(len), len, "ZIP64 extra field");
      if (id != 0x0001) continue;
      if (usize == 0xFFFFFFFF) usize = field.le<uint64_t>();
      if (csize == 0xFFFFFFFF) csize = field.le<uint64_t>();
      if (local == 0xFFFFFFFF) local = field.le<uint64_t>();
    }
    auto it = by_offset_.find(local);
    if (it == by_offset_.end()) fail("the central directory lists '" + name + "' at offset " + std::to_string(local) + ", where no entry starts");
    const Local& l = locals_[it->second];
    if (l.name != name || central_.method != 0 || csize != l.size || usize != l.size)
      fail("the central directory's record of '" + name + "' does not match its local header (" + l.name + ", " +
           std::to_string(l.size) + " bytes)");
    ++centrals_;
    state_ = State::Signature;
  }

  static constexpr uint64_t kMaxMetaEntry = uint64_t(64) << 20;
  State state_ = State::Signature;
  bool described_ = false, in_directory_ = false, pkl_seen_ = false, descriptor_ = false, keep_ = false;
  uint64_t last_ = 0, want_ = 0, csize_ = 0, usize_ = 0, entry_offset_ = 0;
  uint16_t flags_ = 0, name_len_ = 0;
  int storage_ = -1;
  std::string name_, dir_;
  std::vector<uint8_t> buffer_;
  uint8_t descriptor_head_[16] = {};
  std::unordered_map<std::string, int> storage_index_;
  std::vector<std::string> storage_keys_;
  std::vector<bool> arrived_;
  std::vector<Local> locals_;
  std::unordered_map<uint64_t, size_t> by_offset_;
  Central central_{};
  size_t centrals_ = 0;
};

}  // namespace

std::unique_ptr<ContainerReader> open_container(const uint8_t* head) {
  if (is_rwkv_file(head, kContainerSniffBytes)) return std::make_unique<RwkvReader>();
  if (std::memcmp(head, "PK\x03\x04", 4) == 0) return std::make_unique<ZipReader>();
  if (head[8] == '{') return std::make_unique<SafetensorsReader>();
  if (is_gguf(head, kContainerSniffBytes)) return make_gguf_reader();
  throw Error("unrecognised model file: neither a PyTorch .pth (zip), a .safetensors, a GGUF nor a .rwkv file");
}

}  // namespace rwkv
