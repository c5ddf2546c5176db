#include "formats/gguf.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_set>

#include "base/bytes.h"

namespace rwkv {
namespace {

constexpr size_t kMaxDims = 4;                    // GGML_MAX_DIMS
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int64_t kMaxElements = int64_t(1) << 48;
constexpr uint64_t kMaxNameBytes = 256;
constexpr int64_t kQK = 256;                      // values per k-quant super-block

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// get_scale_min_k4: the 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block.
void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The block decoders: one block at x to its values at y (ggml's dequantize_row_*).
void dec_f32(const uint8_t* x, float* y) { std::memcpy(y, x, 4); }
void dec_f16(const uint8_t* x, float* y) { *y = half(x); }
void dec_bf16(const uint8_t* x, float* y) {
  uint16_t h;
  std::memcpy(&h, x, 2);
  *y = bf16_to_f32(h);
}
void dec_q4_0(const uint8_t* x, float* y) {  // f16 d, qs[16]
  const float d = half(x);
  for (int j = 0; j < 16; ++j) {
    y[j] = float((x[2 + j] & 0xF) - 8) * d;
    y[j + 16] = float((x[2 + j] >> 4) - 8) * d;
  }
}
void dec_q4_1(const uint8_t* x, float* y) {  // f16 d, f16 m, qs[16]
  const float d = half(x), m = half(x + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(x[4 + j] & 0xF) * d + m;
    y[j + 16] = float(x[4 + j] >> 4) * d + m;
  }
}
void dec_q5_0(const uint8_t* x, float* y) {  // f16 d, qh[4], qs[16]
  const float d = half(x);
  uint32_t qh;
  std::memcpy(&qh, x + 2, 4);
  for (int j = 0; j < 16; ++j) {
    const uint8_t h0 = uint8_t(((qh >> j) << 4) & 0x10), h1 = uint8_t((qh >> (j + 12)) & 0x10);
    y[j] = float(((x[6 + j] & 0xF) | h0) - 16) * d;
    y[j + 16] = float(((x[6 + j] >> 4) | h1) - 16) * d;
  }
}
void dec_q5_1(const uint8_t* x, float* y) {  // f16 d, f16 m, qh[4], qs[16]
  const float d = half(x), m = half(x + 2);
  uint32_t qh;
  std::memcpy(&qh, x + 4, 4);
  for (int j = 0; j < 16; ++j) {
    const uint8_t h0 = uint8_t(((qh >> j) << 4) & 0x10), h1 = uint8_t((qh >> (j + 12)) & 0x10);
    y[j] = float((x[8 + j] & 0xF) | h0) * d + m;
    y[j + 16] = float((x[8 + j] >> 4) | h1) * d + m;
  }
}
void dec_q8_0(const uint8_t* x, float* y) {  // f16 d, int8 qs[32]
  const float d = half(x);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(x[2 + j])) * d;
}
void dec_q8_1(const uint8_t* x, float* y) {  // f16 d, f16 s, int8 qs[32]
  const float d = half(x);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(x[4 + j])) * d;
}
void dec_q2_k(const uint8_t* x, float* y) {  // scales[16], qs[64], f16 d, f16 dmin
  const uint8_t* sc = x;
  const uint8_t* q = x + 16;
  const float d = half(x + 80), min = half(x + 82);
  int is = 0;
  for (int n = 0; n < kQK; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int half16 = 0; half16 < 2; ++half16) {
        const uint8_t s = sc[is++];
        const float dl = d * float(s & 0xF), ml = min * float(s >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half16] >> shift) & 3) - ml;
      }
      shift += 2;
    }
    q += 32;
  }
}
void dec_q3_k(const uint8_t* x, float* y) {  // hmask[32], qs[64], scales[12], f16 d
  const uint8_t* hm = x;
  const uint8_t* q = x + 32;
  const float d_all = half(x + 108);
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  std::memcpy(aux, x + 96, 12);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  int8_t scales[16];
  std::memcpy(scales, aux, 16);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < kQK; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int half16 = 0; half16 < 2; ++half16) {
        const float dl = d_all * float(scales[is++] - 32);
        for (int l = 16 * half16; l < 16 * half16 + 16; ++l)
          *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      }
      shift += 2;
      m = uint8_t(m << 1);
    }
    q += 32;
  }
}
void dec_q4_k(const uint8_t* x, float* y) {  // f16 d, f16 dmin, scales[12], qs[128]
  const float d = half(x), min = half(x + 2);
  const uint8_t* s = x + 4;
  const uint8_t* q = x + 16;
  for (int j = 0, is = 0; j < kQK; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    scale_min_k4(is, s, sc, m);
    const float d1 = d * float(sc), m1 = min * float(m);
    scale_min_k4(is + 1, s, sc, m);
    const float d2 = d * float(sc), m2 = min * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}
void dec_q5_k(const uint8_t* x, float* y) {  // f16 d, f16 dmin, scales[12], qh[32], qs[128]
  const float d = half(x), min = half(x + 2);
  const uint8_t* s = x + 4;
  const uint8_t* qh = x + 16;
  const uint8_t* ql = x + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < kQK; j += 64, is += 2, ql += 32) {
    uint8_t sc, m;
    scale_min_k4(is, s, sc, m);
    const float d1 = d * float(sc), m1 = min * float(m);
    scale_min_k4(is + 1, s, sc, m);
    const float d2 = d * float(sc), m2 = min * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    u1 = uint8_t(u1 << 2);
    u2 = uint8_t(u2 << 2);
  }
}
void dec_q6_k(const uint8_t* x, float* y) {  // ql[128], qh[64], int8 scales[16], f16 d
  const float d = half(x + 208);
  const uint8_t* ql = x;
  const uint8_t* qh = x + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(x + 192);
  for (int n = 0; n < kQK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * float(sc[is]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}
void dec_q8_k(const uint8_t* x, float* y) {  // f32 d, int8 qs[256], int16 bsums[16]
  float d;
  std::memcpy(&d, x, 4);
  for (int j = 0; j < kQK; ++j) y[j] = d * float(int8_t(x[4 + j]));
}

struct GgmlTraits {
  uint32_t id;
  const char* name;
  int block;           // values per block; 0: a type we cannot read
  size_t block_bytes;
  void (*decode)(const uint8_t* x, float* y);
};

constexpr GgmlTraits kGgml[] = {
    {0, "F32", 1, 4, dec_f32},        {1, "F16", 1, 2, dec_f16},
    {2, "Q4_0", 32, 18, dec_q4_0},    {3, "Q4_1", 32, 20, dec_q4_1},
    {6, "Q5_0", 32, 22, dec_q5_0},    {7, "Q5_1", 32, 24, dec_q5_1},
    {8, "Q8_0", 32, 34, dec_q8_0},    {9, "Q8_1", 32, 36, dec_q8_1},
    {10, "Q2_K", 256, 84, dec_q2_k},  {11, "Q3_K", 256, 110, dec_q3_k},
    {12, "Q4_K", 256, 144, dec_q4_k}, {13, "Q5_K", 256, 176, dec_q5_k},
    {14, "Q6_K", 256, 210, dec_q6_k}, {15, "Q8_K", 256, 292, dec_q8_k},
    {30, "BF16", 1, 2, dec_bf16},
    // Types ggml has that this reader does not decode (named in errors).
    {16, "IQ2_XXS", 0, 0, nullptr},   {17, "IQ2_XS", 0, 0, nullptr},  {18, "IQ3_XXS", 0, 0, nullptr},
    {19, "IQ1_S", 0, 0, nullptr},     {20, "IQ4_NL", 0, 0, nullptr},  {21, "IQ3_S", 0, 0, nullptr},
    {22, "IQ2_S", 0, 0, nullptr},     {23, "IQ4_XS", 0, 0, nullptr},  {24, "I8", 0, 0, nullptr},
    {25, "I16", 0, 0, nullptr},       {26, "I32", 0, 0, nullptr},     {27, "I64", 0, 0, nullptr},
    {28, "F64", 0, 0, nullptr},       {29, "IQ1_M", 0, 0, nullptr},   {34, "TQ1_0", 0, 0, nullptr},
    {35, "TQ2_0", 0, 0, nullptr},     {39, "MXFP4", 0, 0, nullptr},
};

const GgmlTraits* traits(uint32_t type) {
  for (const auto& t : kGgml)
    if (t.id == type) return &t;
  return nullptr;
}
const GgmlTraits& readable(uint32_t type) {
  const GgmlTraits* t = traits(type);
  if (!t || !t->block) throw Error("internal: ggml type " + ggml_type_name(type) + " is not readable");
  return *t;
}

bool plain(uint32_t type) { return type == 0 || type == 1 || type == 30; }
DType plain_dtype(uint32_t type) { return type == 0 ? DType::F32 : type == 1 ? DType::F16 : DType::BF16; }

// Thrown by the cursor when the bytes end inside the header (caught by try_parse), with
// a lower bound of the bytes still to come: a streaming reader can ask for that many and
// never read past the header's end.
struct NeedMore {
  uint64_t bytes;
};
constexpr uint64_t kFar = uint64_t(1) << 62;  // "more than any file"
// a * b, or kFar when that is more.
uint64_t far_mul(uint64_t a, uint64_t b) { return b && a > kFar / b ? kFar : std::min(kFar, a * b); }

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  // The least number of header bytes after the current field (kept by the parser).
  uint64_t after = 0;
  const uint8_t* take(uint64_t n) {
    if (n > remaining()) throw NeedMore{std::min(kFar, n - remaining() + after)};
    const uint8_t* p = data_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  template <typename T>
  T le() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string str(const std::string& what) {
    const uint64_t n = le<uint64_t>();
    if (n > (uint64_t(1) << 32)) throw Error("GGUF header: " + what + " is a string of " + std::to_string(n) + " bytes");
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), size_t(n));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Bytes one value of scalar gguf_type t takes (0 for strings, arrays, unknown types).
size_t scalar_bytes(uint32_t t) {
  switch (t) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 10: case 11: case 12: return 8;
  }
  return 0;
}

void read_scalar(Cursor& c, uint32_t t, int64_t& i, double& f) {
  switch (t) {
    case 0: i = c.le<uint8_t>(); return;
    case 1: i = c.le<int8_t>(); return;
    case 2: i = c.le<uint16_t>(); return;
    case 3: i = c.le<int16_t>(); return;
    case 4: i = c.le<uint32_t>(); return;
    case 5: i = c.le<int32_t>(); return;
    case 6: f = c.le<float>(); return;
    case 7: i = c.le<uint8_t>() != 0; return;
    case 10: i = int64_t(c.le<uint64_t>()); return;
    case 11: i = c.le<int64_t>(); return;
    case 12: f = c.le<double>(); return;
  }
}

// The parser's counts of what is still to come, for the lower bound of the header's rest.
struct Rest {
  uint64_t kvs = 0, tensors = 0, elements = 0, element_bytes = 0;
  // Each metadata entry takes at least 13 bytes (key length, type, a 1-byte value), each
  // tensor info 32 (name length, dimension count, one dimension, type, offset).
  uint64_t bytes() const { return std::min(kFar, kvs * 13 + tensors * 32 + far_mul(elements, element_bytes)); }
};

GgufValue read_value(Cursor& c, uint32_t type, const std::string& key, int depth, Rest& rest) {
  GgufValue v;
  v.type = type;
  if (scalar_bytes(type)) {
    read_scalar(c, type, v.i, v.f);
  } else if (type == 8) {
    v.str = c.str("the value of '" + key + "'");
  } else if (type == 9) {
    v.elem = c.le<uint32_t>();
    v.count = c.le<uint64_t>();
    if (!scalar_bytes(v.elem) && v.elem != 8 && v.elem != 9)
      throw Error("GGUF metadata '" + key + "': an array of unknown value type " + std::to_string(v.elem));
    if (depth > 2) throw Error("GGUF metadata '" + key + "': arrays nested too deep");
    // Every element takes at least `least` bytes: a count beyond the bytes left needs more.
    const size_t least = v.elem == 8 ? 8 : v.elem == 9 ? 12 : scalar_bytes(v.elem);
    if (v.count > c.remaining() / least) throw NeedMore{std::min(kFar, far_mul(v.count, least) - c.remaining() + rest.bytes())};
    for (uint64_t k = 0; k < v.count; ++k) {
      if (depth == 0) {
        rest.elements = v.count - k - 1;
        rest.element_bytes = least;
        c.after = rest.bytes();
      }
      if (v.elem == 8) {
        v.strings.push_back(c.str("an element of '" + key + "'"));
      } else if (v.elem == 9) {
        read_value(c, 9, key, depth + 1, rest);
      } else {
        int64_t i = 0;
        double f = 0;
        read_scalar(c, v.elem, i, f);
        if (v.elem == 6 || v.elem == 12) v.floats.push_back(f);
        else v.ints.push_back(i);
      }
    }
    if (depth == 0) rest.elements = 0;
  } else {
    throw Error("GGUF metadata '" + key + "' has unknown value type " + std::to_string(type));
  }
  return v;
}

GgufHeader parse_header(const uint8_t* data, size_t size) {
  Cursor c(data, size);
  if (std::memcmp(c.take(4), "GGUF", 4) != 0) throw Error("not a GGUF file (the magic 'GGUF' is missing)");
  GgufHeader h;
  h.version = c.le<uint32_t>();
  if (h.version == 0x02000000 || h.version == 0x03000000) throw Error("big-endian GGUF files are not supported");
  if (h.version == 1) throw Error("GGUF version 1 is not supported (versions 2 and 3 are; convert the file again)");
  if (h.version != 2 && h.version != 3) throw Error("GGUF version " + std::to_string(h.version) + " is not supported (2 and 3 are)");
  const uint64_t n_tensors = c.le<uint64_t>(), n_kv = c.le<uint64_t>();
  if (n_tensors > (1u << 20)) throw Error("GGUF header: " + std::to_string(n_tensors) + " tensors is more than a model has");
  if (n_kv > (1u << 20)) throw Error("GGUF header: " + std::to_string(n_kv) + " metadata entries is too many");
  Rest rest{n_kv, n_tensors};
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    rest.kvs = n_kv - k - 1;
    c.after = rest.bytes() + 5;  // and this entry's type and value
    std::string key = c.str("a metadata key");
    c.after = rest.bytes() + 1;
    const uint32_t type = c.le<uint32_t>();
    c.after = rest.bytes();
    GgufValue v = read_value(c, type, key, 0, rest);
    if (!keys.insert(key).second) throw Error("GGUF metadata '" + key + "' appears twice");
    h.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    if (a->type != 4) throw Error("GGUF metadata 'general.alignment' must be a uint32");
    if (a->i == 0 || (a->i & (a->i - 1)) != 0)
      throw Error("GGUF metadata 'general.alignment' is " + std::to_string(a->i) + ", not a power of two");
    h.alignment = uint64_t(a->i);
  }
  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    rest.tensors = n_tensors - k - 1;
    c.after = rest.bytes();
    GgufTensorInfo t;
    t.name = c.str("a tensor name");
    auto bad = [&](const std::string& why) { throw Error("GGUF tensor '" + t.name + "': " + why); };
    if (t.name.size() > kMaxNameBytes) bad("its name is longer than " + std::to_string(kMaxNameBytes) + " bytes");
    const uint32_t nd = c.le<uint32_t>();
    if (nd == 0 || nd > kMaxDims) bad("has " + std::to_string(nd) + " dimensions (1 to 4 are possible)");
    int64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t n = c.le<uint64_t>();
      if (n > uint64_t(kMaxDim)) bad("dimension " + std::to_string(n) + " is out of range");
      t.ne.push_back(int64_t(n));
    }
    for (int64_t n : t.ne) {
      if (n != 0 && numel > kMaxElements / n) bad("has more elements than any model");
      numel *= n;
    }
    t.type = c.le<uint32_t>();
    t.offset = c.le<uint64_t>();
    if (t.offset % h.alignment) bad("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(h.alignment));
    if (const GgmlTraits* tr = traits(t.type); tr && tr->block) {
      if (t.ne[0] % tr->block)
        bad("its rows of " + std::to_string(t.ne[0]) + " values are not whole " + tr->name + " blocks of " + std::to_string(tr->block));
      t.bytes = uint64_t(numel / tr->block) * tr->block_bytes;
    }
    if (!names.insert(t.name).second) bad("appears twice");
    h.tensors.push_back(std::move(t));
  }
  h.data_start = (c.pos() + h.alignment - 1) / h.alignment * h.alignment;
  if (h.data_start > size) throw NeedMore{h.data_start - size};  // the padding after the header is part of it
  return h;
}

// A hyperparameter: a non-negative integer metadata value no larger than `limit`.
int64_t hparam(const GgufHeader& h, const std::string& key, int64_t limit) {
  const GgufValue* v = h.find(key);
  if (!v) throw Error("GGUF file lacks metadata '" + key + "'");
  if (!scalar_bytes(v->type) || v->type == 6 || v->type == 12 || v->type == 7)
    throw Error("GGUF metadata '" + key + "' is not an integer");
  if (v->i < 0 || v->i > limit)
    throw Error("GGUF metadata '" + key + "' is " + std::to_string(v->i) + ", outside 0.." + std::to_string(limit));
  return v->i;
}

std::string ne_string(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Shapes compare as ggml does: missing trailing dimensions are 1.
bool same_ne(std::vector<int64_t> a, std::vector<int64_t> b) {
  a.resize(kMaxDims, 1);
  b.resize(kMaxDims, 1);
  return a == b;
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  const GgmlTraits* t = traits(type);
  return t ? t->name : "type " + std::to_string(type);
}
bool ggml_type_readable(uint32_t type) {
  const GgmlTraits* t = traits(type);
  return t && t->block;
}
int ggml_block_size(uint32_t type) { return readable(type).block; }
size_t ggml_block_bytes(uint32_t type) { return readable(type).block_bytes; }

void ggml_to_float(uint32_t type, const uint8_t* src, int64_t n, float* out) {
  const GgmlTraits& t = readable(type);
  for (int64_t i = 0; i < n; i += t.block, src += t.block_bytes) t.decode(src, out + i);
}

const GgufValue* GgufHeader::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

bool is_gguf(const uint8_t* data, size_t size) { return size >= 4 && std::memcmp(data, "GGUF", 4) == 0; }

std::optional<GgufHeader> try_parse_gguf_header(const uint8_t* data, size_t size) {
  try {
    return parse_header(data, size);
  } catch (const NeedMore&) {
    return std::nullopt;
  }
}

GgufHeader parse_gguf_header(const uint8_t* data, size_t size) {
  std::optional<GgufHeader> h = try_parse_gguf_header(data, size);
  if (!h) throw Error("GGUF file is truncated: it ends inside its header (" + std::to_string(size) + " bytes)");
  return std::move(*h);
}

std::vector<GgufSource> gguf_sources(const GgufHeader& h, uint64_t file_size) {
  const GgufValue* arch = h.find("general.architecture");
  if (!arch || arch->type != 8) throw Error("GGUF file lacks its general.architecture");
  if (arch->str != "rwkv7")
    throw Error("GGUF file holds a '" + arch->str + "' model; only RWKV-7 ('rwkv7') models are supported");
  const int64_t L = hparam(h, "rwkv7.block_count", 1024), C = hparam(h, "rwkv7.embedding_length", 65536);
  const int64_t N = hparam(h, "rwkv7.wkv.head_size", 65536), F = hparam(h, "rwkv7.feed_forward_length", 8 * 65536);
  const int64_t Dw = hparam(h, "rwkv7.attention.decay_lora_rank", 65536);
  const int64_t Da = hparam(h, "rwkv7.attention.iclr_lora_rank", 65536);
  const int64_t Dv = hparam(h, "rwkv7.attention.value_residual_mix_lora_rank", 65536);
  const int64_t Dg = hparam(h, "rwkv7.attention.gate_lora_rank", 65536);
  if (L < 1 || C < 1 || N < 1 || C % N)
    throw Error("GGUF rwkv7 hyperparameters do not describe a model: " + std::to_string(L) + " layers, embedding " +
                std::to_string(C) + ", head size " + std::to_string(N));
  const GgufTensorInfo* emb = nullptr;
  for (const auto& t : h.tensors)
    if (t.name == "token_embd.weight") emb = &t;
  if (!emb) throw Error("GGUF file lacks tensor 'token_embd.weight'");
  const int64_t V = emb->ne.size() == 2 ? emb->ne[1] : 0;
  if (V < 1 || V > (int64_t(1) << 21))
    throw Error("GGUF tensor 'token_embd.weight' has shape " + ne_string(emb->ne) + ": not an embedding of [C, vocabulary]");

  // What each GGUF tensor must be: its ggml shape, and the checkpoint tensors made of it
  // ({key, our shape, transposed}), several for the fused mixes (one slot each).
  struct Part {
    std::string key;
    std::vector<int64_t> shape;
    bool transposed;
  };
  struct Want {
    std::vector<int64_t> ne;
    std::vector<Part> parts;
    bool large;
  };
  std::vector<std::pair<std::string, Want>> want;
  const std::vector<int64_t> mix{1, 1, C};
  auto add = [&](std::string name, std::vector<int64_t> ne, std::vector<Part> parts, bool large = false) {
    want.push_back({std::move(name), {std::move(ne), std::move(parts), large}});
  };
  auto vec = [&](const std::string& name, const std::string& key, std::vector<int64_t> shape) { add(name, {C}, {{key, std::move(shape), false}}); };
  add("token_embd.weight", {C, V}, {{"emb.weight", {V, C}, false}}, true);
  vec("token_embd_norm.weight", "blocks.0.ln0.weight", {C});
  vec("token_embd_norm.bias", "blocks.0.ln0.bias", {C});
  vec("output_norm.weight", "ln_out.weight", {C});
  vec("output_norm.bias", "ln_out.bias", {C});
  add("output.weight", {C, V}, {{"head.weight", {V, C}, false}}, true);
  for (int64_t i = 0; i < L; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".", a = b + "att.", g = "blk." + std::to_string(i) + ".";
    vec(g + "attn_norm.weight", b + "ln1.weight", {C});
    vec(g + "attn_norm.bias", b + "ln1.bias", {C});
    vec(g + "attn_norm_2.weight", b + "ln2.weight", {C});
    vec(g + "attn_norm_2.bias", b + "ln2.bias", {C});
    std::vector<Part> mixes;
    for (const char* m : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) mixes.push_back({a + m, mix, false});
    add(g + "time_mix_lerp_fused.weight", {C, 1, 1, 6}, std::move(mixes));
    for (auto [p, D] : {std::pair{'w', Dw}, {'a', Da}, {'v', Dv}, {'g', Dg}}) {
      const std::string t = g + "time_mix_" + p;
      if (p == 'v' && i == 0) {  // llama.cpp's unused copies of a0/a1/a2: checked, not read
        add(t + "0.weight", {C}, {});
        add(t + "1.weight", {C, Da}, {});
        add(t + "2.weight", {Da, C}, {});
        continue;
      }
      if (p != 'g') add(t + "0.weight", {C}, {{a + p + "0", mix, false}});
      add(t + "1.weight", {C, D}, {{a + p + "1", {C, D}, true}});
      add(t + "2.weight", {D, C}, {{a + p + "2", {D, C}, true}});
    }
    vec(g + "time_mix_k_k.weight", a + "k_k", mix);
    vec(g + "time_mix_k_a.weight", a + "k_a", mix);
    vec(g + "time_mix_r_k.weight", a + "r_k", {C / N, N});
    for (const char* m : {"key", "value", "receptance", "output"})
      add(g + "time_mix_" + m + ".weight", {C, C}, {{a + m + ".weight", {C, C}, false}}, true);
    vec(g + "time_mix_ln.weight", a + "ln_x.weight", {C});
    vec(g + "time_mix_ln.bias", a + "ln_x.bias", {C});
    vec(g + "channel_mix_lerp_k.weight", b + "ffn.x_k", mix);
    add(g + "channel_mix_key.weight", {C, F}, {{b + "ffn.key.weight", {F, C}, false}}, true);
    add(g + "channel_mix_value.weight", {F, C}, {{b + "ffn.value.weight", {C, F}, false}}, true);
  }

  std::vector<std::pair<const std::string*, const Want*>> index;
  for (const auto& [name, w] : want) index.push_back({&name, &w});
  std::sort(index.begin(), index.end(), [](const auto& x, const auto& y) { return *x.first < *y.first; });
  std::vector<bool> seen(index.size(), false);
  std::vector<GgufSource> out;
  for (const auto& t : h.tensors) {
    auto it = std::lower_bound(index.begin(), index.end(), t.name, [](const auto& x, const std::string& n) { return *x.first < n; });
    if (it == index.end() || *it->first != t.name)
      throw Error("GGUF tensor '" + t.name + "' is not part of an RWKV-7 model of " + std::to_string(L) + " layers");
    seen[size_t(it - index.begin())] = true;
    const Want& w = *it->second;
    if (!same_ne(t.ne, w.ne))
      throw Error("GGUF tensor '" + t.name + "': expected shape " + ne_string(w.ne) + ", found " + ne_string(t.ne));
    if (!ggml_type_readable(t.type))
      throw Error("GGUF tensor '" + t.name + "' is of type " + ggml_type_name(t.type) +
                  ", which this reader cannot read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, "
                  "Q5_K, Q6_K and Q8_K)");
    if (file_size && (t.offset > file_size || h.data_start + t.offset + t.bytes > file_size))
      throw Error("GGUF tensor '" + t.name + "': its " + std::to_string(t.bytes) + " bytes at offset " +
                  std::to_string(h.data_start + t.offset) + " lie past the end of the " + std::to_string(file_size) +
                  "-byte file (truncated download?)");
    const uint64_t slot_bytes = t.bytes / std::max<size_t>(w.parts.size(), 1);
    for (size_t s = 0; s < w.parts.size(); ++s) {
      const Part& p = w.parts[s];
      out.push_back({p.key, p.shape, t.type, h.data_start + t.offset + s * slot_bytes, slot_bytes, p.transposed, w.large});
    }
  }
  for (size_t k = 0; k < index.size(); ++k)
    if (!seen[k]) throw Error("GGUF file lacks tensor '" + *index[k].first + "' (expected shape " + ne_string(index[k].second->ne) + ")");
  return out;
}

void gguf_source_to_float(const GgufSource& s, const uint8_t* src, float* out) {
  int64_t n = 1;
  for (int64_t d : s.shape) n *= d;
  if (!s.transposed) return ggml_to_float(s.type, src, n, out);
  // Stored as K rows of R values: the transpose of our (R, K).
  const int64_t R = s.shape[0], K = s.shape[1];
  std::vector<float> stored(static_cast<size_t>(n));
  ggml_to_float(s.type, src, n, stored.data());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t r = 0; r < R; ++r) out[r * K + k] = stored[size_t(k * R + r)];
}

void gguf_repack_blocks(uint32_t type, const uint8_t* src, int64_t rows, int64_t cols, uint8_t* blob) {
  const bool q8 = type == uint32_t(GgmlType::Q8_0);
  if (!q8 && type != uint32_t(GgmlType::Q4_0)) throw Error("internal: repacking " + ggml_type_name(type));
  const DType ours = q8 ? DType::Q8_0 : DType::Q4_0;
  const size_t qbytes = type_traits(ours).block_bytes, nblocks = size_t(rows) * size_t(cols / kQuantBlock);
  float* scales = reinterpret_cast<float*>(blob + matrix_value_bytes(ours, size_t(rows), size_t(cols)));
  for (size_t b = 0; b < nblocks; ++b, src += 2 + qbytes) {
    const float d = half(src);
    std::memcpy(scales + b, &d, 4);
    std::memcpy(blob + b * qbytes, src + 2, qbytes);
  }
}

std::string gguf_vocab_text(const GgufHeader& h) {
  const GgufValue* model = h.find("tokenizer.ggml.model");
  const GgufValue* tokens = h.find("tokenizer.ggml.tokens");
  if (!model || model->type != 8 || model->str != "rwkv" || !tokens || tokens->type != 9 || tokens->elem != 8) return {};
  const GgufValue* types = h.find("tokenizer.ggml.token_type");
  const bool typed = types && types->type == 9 && types->ints.size() == tokens->strings.size();
  std::string text;
  static const char* hex = "0123456789abcdef";
  for (size_t id = 1; id < tokens->strings.size(); ++id) {
    if (typed && types->ints[id] != 1) continue;  // only normal tokens (not <s>, [PADn])
    // llama.cpp's llama_unescape_rwkv_token: \t \n \r \xNN, any other \c is c.
    std::string bytes;
    const std::string& s = tokens->strings[id];
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 == s.size()) {
        bytes += s[i];
        continue;
      }
      const char c = s[++i];
      if (c == 'x' && i + 2 < s.size() && std::isxdigit(uint8_t(s[i + 1])) && std::isxdigit(uint8_t(s[i + 2]))) {
        bytes += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        bytes += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
      }
    }
    if (bytes.empty()) continue;
    text += std::to_string(id) + " b'";
    for (unsigned char c : bytes) {
      if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
        text += char(c);
      } else {
        text += "\\x";
        text += hex[c >> 4];
        text += hex[c & 15];
      }
    }
    text += "' " + std::to_string(bytes.size()) + "\n";
  }
  return text;
}

namespace {

class GgufReader final : public ContainerReader {
 public:
  Segment next() override {
    if (!header_) return {Segment::Meta, need_};
    if (!data_sent_) {
      data_sent_ = true;
      return {Segment::Data, storage_bytes_[0], 0};
    }
    return {Segment::End};
  }

  void meta(const uint8_t* data, size_t size) override {
    buf_.insert(buf_.end(), data, data + size);
    try {
      header_ = parse_header(buf_.data(), buf_.size());
    } catch (const NeedMore& m) {
      if (m.bytes >= kFar) throw Error("GGUF header: it claims more entries than any file holds");
      need_ = m.bytes;
      return;
    }
    std::vector<uint8_t>().swap(buf_);
    uint64_t end = 0;
    for (const auto& t : header_->tensors) end = std::max(end, t.offset + t.bytes);
    storage_bytes_ = {end};
    vocab_text_ = gguf_vocab_text(*header_);
    for (const GgufSource& s : gguf_sources(*header_, 0)) tensors_.push_back(record(s, header_->data_start));
  }

  bool described() const override { return header_.has_value(); }
  const char* kind() const override { return "GGUF file"; }

 private:
  static TensorRecord record(const GgufSource& s, uint64_t data_start) {
    TensorRecord r;
    r.name = s.key;
    r.shape = s.shape;
    r.stride.assign(s.shape.size(), 1);
    for (size_t d = s.shape.size() - 1; d-- > 0;) r.stride[d] = r.stride[d + 1] * s.shape[d + 1];
    r.offset = s.offset - data_start;
    if (plain(s.type) && !s.transposed) {
      r.dtype = plain_dtype(s.type);
      return r;
    }
    if (s.large && !s.transposed) {  // by rows of ggml blocks
      const uint32_t type = s.type;
      const int64_t cols = s.shape[1];
      r.dtype = type == uint32_t(GgmlType::Q8_0) ? DType::Q8_0 : type == uint32_t(GgmlType::Q4_0) ? DType::Q4_0 : DType::BF16;
      r.row_bytes = s.bytes / uint64_t(s.shape[0]);
      r.rows = [type, cols](const uint8_t* src, int64_t, int64_t n, float* out) { ggml_to_float(type, src, n * cols, out); };
      return r;
    }
    r.dtype = s.type == uint32_t(GgmlType::BF16) ? DType::BF16 : DType::F32;
    r.whole_bytes = r.row_bytes = s.bytes;
    r.rows = [s](const uint8_t* src, int64_t, int64_t, float* out) { gguf_source_to_float(s, src, out); };
    return r;
  }

  uint64_t need_ = 24;  // magic, version, the two counts
  std::vector<uint8_t> buf_;
  std::optional<GgufHeader> header_;
  bool data_sent_ = false;
};

}  // namespace

std::unique_ptr<ContainerReader> make_gguf_reader() { return std::make_unique<GgufReader>(); }

std::vector<TensorInfo> read_gguf(const uint8_t* data, size_t size, DType large, std::vector<std::vector<uint8_t>>& owned,
                                  std::string& vocab) {
  const GgufHeader h = parse_gguf_header(data, size);
  vocab = gguf_vocab_text(h);
  std::vector<TensorInfo> out;
  for (const GgufSource& s : gguf_sources(h, size)) {
    const uint8_t* src = data + s.offset;
    TensorInfo t{s.key, DType::F32, s.shape, std::vector<int64_t>(s.shape.size(), 1), src};
    for (size_t d = s.shape.size() - 1; d-- > 0;) t.stride[d] = t.stride[d + 1] * s.shape[d + 1];
    const int64_t rows = s.shape.size() == 2 ? s.shape[0] : 1, cols = t.numel() / std::max<int64_t>(rows, 1);
    if (plain(s.type)) {  // a view: transposed LoRAs through their strides
      t.dtype = plain_dtype(s.type);
      if (s.transposed) t.stride = {1, s.shape[0]};
    } else if (s.large && (s.type == uint32_t(GgmlType::Q8_0) || s.type == uint32_t(GgmlType::Q4_0))) {
      t.dtype = s.type == uint32_t(GgmlType::Q8_0) ? DType::Q8_0 : DType::Q4_0;
      auto& blob = owned.emplace_back(matrix_bytes(t.dtype, size_t(rows), size_t(cols)));
      gguf_repack_blocks(s.type, src, rows, cols, blob.data());
      t.data = blob.data();
    } else if (s.large) {  // decoded and re-encoded row by row: never the whole matrix as float32
      t.dtype = large;
      const TypeTraits& tt = type_traits(large);
      auto& blob = owned.emplace_back(matrix_bytes(large, size_t(rows), size_t(cols)));
      const size_t row_in = size_t(cols / ggml_block_size(s.type)) * ggml_block_bytes(s.type);
      const size_t row_out = matrix_value_bytes(large, 1, size_t(cols)), nb = size_t(cols) / kQuantBlock;
      float* scales = reinterpret_cast<float*>(blob.data() + matrix_value_bytes(large, size_t(rows), size_t(cols)));
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        ggml_to_float(s.type, src + size_t(r) * row_in, cols, row.data());
        tt.from_float(row.data(), int(cols), blob.data() + size_t(r) * row_out, tt.quantized ? scales + size_t(r) * nb : nullptr);
      }
      t.data = blob.data();
    } else {  // small tensors of a block type: float32
      auto& buf = owned.emplace_back(size_t(t.numel()) * 4);
      gguf_source_to_float(s, src, reinterpret_cast<float*>(buf.data()));
      t.data = buf.data();
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace rwkv
