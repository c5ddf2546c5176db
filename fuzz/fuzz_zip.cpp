// FUZZ_MAX_LEN 4194304
// FUZZ_DICTS zip
// FUZZ_SEEDS zip pth
//
// rwkv::read_zip on arbitrary bytes. Every entry must lie inside the input; the first and
// last byte of each are read so that a view past the buffer is caught by ASan too.
#include "harness.h"
#include "formats/zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    for (const rwkv::ZipEntry& e : rwkv::read_zip(data, size)) {
      FUZZ_CHECK(fuzz_within(e.data, e.size, data, size));
      fuzz_consume(e.name.size());
      if (e.size > 0) {
        fuzz_touch(e.data, 1);
        fuzz_touch(e.data + (e.size - 1), 1);
      }
    }
  });
}
