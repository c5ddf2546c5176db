#pragma once
// Little helpers for reading untrusted byte buffers: every read is bounds-checked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace rwkv {

// A malloc'd buffer and its size. Model files are handed over in one of these so the
// loaded model can keep views into it (the weights are never copied).
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
struct Bytes {
  std::unique_ptr<uint8_t[], FreeDeleter> data;
  size_t size = 0;
  // Allocates `size` uninitialised bytes; throws rwkv::Error when memory is short.
  static Bytes allocate(size_t size) {
    auto* p = static_cast<uint8_t*>(std::malloc(size ? size : 1));
    if (!p) throw Error("out of memory: cannot allocate " + std::to_string(size) + " bytes");
    return adopt(p, size);
  }
  // Takes ownership of `data`, which must come from malloc.
  static Bytes adopt(uint8_t* data, size_t size) {
    Bytes b;
    b.data.reset(data);
    b.size = size;
    return b;
  }
};

// A read cursor over [data, data + size) that throws rwkv::Error, naming `what`,
// instead of reading past the end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, std::string_view what)
      : data_(data), size_(size), what_(what) {}
  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  bool at_end() const { return pos_ == size_; }
  void seek(size_t pos) {
    if (pos > size_) fail("offset " + std::to_string(pos) + " is past the end");
    pos_ = pos;
  }
  const uint8_t* take(size_t n) {
    if (n > remaining()) fail("needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                              " but only " + std::to_string(remaining()) + " remain");
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T le() {  // little-endian unsigned or signed integer, or float/double
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  uint8_t u8() { return *take(1); }
  std::string_view str(size_t n) { return {reinterpret_cast<const char*>(take(n)), n}; }
  [[noreturn]] void fail(const std::string& msg) const { throw Error(std::string(what_) + ": " + msg); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string_view what_;
};

}  // namespace rwkv
