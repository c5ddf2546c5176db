#pragma once
// Reader for the zip container of PyTorch `.pth` files: stored (uncompressed) entries,
// ZIP64 included. Entries are views into the caller's buffer; nothing is copied.
#include <cstdint>
#include <string>
#include <vector>

namespace rwkv {

struct ZipEntry {
  std::string name;
  const uint8_t* data;  // first byte of the entry's contents, inside the archive buffer
  uint64_t size;        // bytes
};

// Lists the entries of the archive in `data` (size bytes). Throws rwkv::Error for a
// damaged or truncated archive and for compressed entries.
std::vector<ZipEntry> read_zip(const uint8_t* data, size_t size);

}  // namespace rwkv
