#include "formats/zip.h"

#include "base/bytes.h"

namespace rwkv {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;

// Finds the end-of-central-directory record, scanning back over a possible comment.
size_t find_eocd(const uint8_t* data, size_t size) {
  if (size < 22) throw Error("not a zip archive: file is only " + std::to_string(size) + " bytes");
  const size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t pos = size - 22;; --pos) {
    uint32_t sig;
    std::memcpy(&sig, data + pos, 4);
    if (sig == kEndOfCentralDir) return pos;
    if (pos == lowest) break;
  }
  throw Error("zip archive is truncated or damaged: no end-of-central-directory record");
}

}  // namespace

std::vector<ZipEntry> read_zip(const uint8_t* data, size_t size) {
  Reader r(data, size, "zip archive");
  const size_t eocd = find_eocd(data, size);
  r.seek(eocd + 10);
  uint64_t count = r.le<uint16_t>();
  uint64_t dir_size = r.le<uint32_t>();
  uint64_t dir_offset = r.le<uint32_t>();
  if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    if (eocd < 20) r.fail("ZIP64 locator missing");
    r.seek(eocd - 20);
    if (r.le<uint32_t>() != kZip64EndLocator) r.fail("ZIP64 locator missing");
    r.le<uint32_t>();
    uint64_t z64 = r.le<uint64_t>();
    if (z64 > size) r.fail("ZIP64 record offset is past the end of the file");
    r.seek(z64);
    if (r.le<uint32_t>() != kZip64End) r.fail("bad ZIP64 end-of-central-directory record");
    r.le<uint64_t>();  // record size
    r.le<uint16_t>();  // version made by
    r.le<uint16_t>();  // version needed
    r.le<uint32_t>();  // this disk
    r.le<uint32_t>();  // disk with directory
    r.le<uint64_t>();  // entries on this disk
    count = r.le<uint64_t>();
    dir_size = r.le<uint64_t>();
    dir_offset = r.le<uint64_t>();
  }
  if (dir_offset > size || dir_size > size - dir_offset)
    r.fail("central directory lies outside the file (truncated download?)");
  // Each central record takes at least 46 bytes: a count beyond that is a lie.
  if (count > dir_size / 46) r.fail("entry count " + std::to_string(count) + " does not fit the central directory");

  std::vector<ZipEntry> entries;
  entries.reserve(count);
  r.seek(dir_offset);
  for (uint64_t i = 0; i < count; ++i) {
    if (r.le<uint32_t>() != kCentralHeader) r.fail("bad central directory record " + std::to_string(i));
    r.take(6);  // versions, flags
    const uint16_t method = r.le<uint16_t>();
    r.take(8);  // time, date, crc
    uint64_t csize = r.le<uint32_t>();
    uint64_t usize = r.le<uint32_t>();
    const uint16_t name_len = r.le<uint16_t>();
    const uint16_t extra_len = r.le<uint16_t>();
    const uint16_t comment_len = r.le<uint16_t>();
    r.take(8);  // disk, attributes
    uint64_t local = r.le<uint32_t>();
    std::string name(r.str(name_len));
    Reader extra(r.take(extra_len), extra_len, "zip extra field");
    r.take(comment_len);
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.le<uint16_t>();
      const uint16_t len = extra.le<uint16_t>();
      Reader field(extra.take(len), len, "ZIP64 extra field");
      if (id != 0x0001) continue;
      if (usize == 0xFFFFFFFF) usize = field.le<uint64_t>();
      if (csize == 0xFFFFFFFF) csize = field.le<uint64_t>();
      if (local == 0xFFFFFFFF) local = field.le<uint64_t>();
    }
    if (method != 0) r.fail("entry '" + name + "' is compressed (method " + std::to_string(method) +
                            "); only stored entries are supported, as torch.save writes them");
    if (csize != usize) r.fail("entry '" + name + "' has inconsistent sizes");
    // The local header repeats the name and has its own extra field (torch pads with it).
    if (local > size) r.fail("entry '" + name + "' starts past the end of the file");
    Reader lh(data + local, size - local, "zip local header");
    if (lh.le<uint32_t>() != kLocalHeader) lh.fail("bad local header for entry '" + name + "'");
    lh.take(22);
    const uint16_t lname = lh.le<uint16_t>();
    const uint16_t lextra = lh.le<uint16_t>();
    lh.take(size_t(lname) + lextra);
    if (usize > lh.remaining())
      r.fail("entry '" + name + "' needs " + std::to_string(usize) + " bytes but the file ends after " +
             std::to_string(lh.remaining()) + " (truncated download?)");
    entries.push_back({std::move(name), data + local + lh.pos(), usize});
  }
  return entries;
}

}  // namespace rwkv
