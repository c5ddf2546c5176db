#include "model/model.h"

#include "formats/rwkv_file.h"
#include "base/dtype.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace rwkv {
namespace {

// Dimensions beyond these are refused: they guard the size arithmetic below and are far
// above every published model (C 2560, F 10240, V 65536, 32 layers).
constexpr int64_t kMaxLayers = 1024, kMaxWidth = 65536, kMaxVocab = 1 << 21;

// Calls fn(storage offset) for every element of t in row-major order.
template <typename Fn>
void for_each_offset(const TensorInfo& t, Fn fn) {
  const size_t nd = t.shape.size();
  if (t.numel() == 0) return;
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (;;) {
    fn(off);
    size_t d = nd;
    while (d-- > 0) {
      if (++idx[d] < t.shape[d]) {
        off += t.stride[d];
        break;
      }
      off -= (t.shape[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
    if (d == size_t(-1)) return;
  }
}

void check_finite(const TensorInfo& t);

class Loader {
 public:
  Loader(std::vector<TensorInfo> tensors) : tensors_(std::move(tensors)) {
    for (const auto& t : tensors_) by_name_[t.name] = &t;
  }

  const TensorInfo* find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  // The tensor `name` with shape `expect`; vectors may drop size-1 dimensions.
  const TensorInfo& need(const std::string& name, const std::vector<int64_t>& expect, bool squeeze) const {
    const TensorInfo* t = find(name);
    if (!t) throw Error("model file lacks tensor '" + name + "' (expected shape " + shape_string(expect) + ")");
    const bool ok = squeeze ? squeezed(t->shape) == squeezed(expect) : t->shape == expect;
    if (!ok)
      throw Error("tensor '" + name + "': expected shape " + shape_string(expect) + ", found " +
                  shape_string(t->shape));
    return *t;
  }

  // True when no other tensor's bytes overlap t's (contiguous t): t may be rewritten.
  bool exclusive(const TensorInfo& t) const {
    if (!t.contiguous() || is_quantized(t.dtype)) return false;
    const uint8_t *b = t.data, *e = b + size_t(t.numel()) * dtype_size(t.dtype);
    for (const auto& o : tensors_) {
      if (&o == &t || is_quantized(o.dtype)) continue;
      int64_t last = 0;  // the largest element offset of o
      for (size_t d = 0; d < o.shape.size(); ++d) last += (o.shape[d] - 1) * o.stride[d];
      const uint8_t *ob = o.data, *oe = ob + size_t(last + 1) * dtype_size(o.dtype);
      if (o.numel() > 0 && ob < e && b < oe) return false;
    }
    return true;
  }

  // t (2-D) as a Matrix: in place when contiguous and aligned (quantized blobs always),
  // else an F32 (from F16) or same-type copy appended to `owned`. Refuses NaN/infinity.
  Matrix matrix(const TensorInfo& t, std::vector<std::vector<uint8_t>>& owned) const {
    const int rows = int(t.shape[0]), cols = int(t.shape[1]);
    Matrix out{t.dtype, rows, cols, t.data};
    if (is_quantized(t.dtype)) {
      if (cols % kQuantBlock || reinterpret_cast<uintptr_t>(t.data) % alignof(float))
        throw Error("tensor '" + t.name + "' (" + dtype_name(t.dtype) + ", shape " + shape_string(t.shape) +
                    "): the columns must be a multiple of 32 and the data 4-byte aligned");
      out.scale = reinterpret_cast<const float*>(t.data + matrix_value_bytes(t.dtype, rows, cols));
      const size_t n = size_t(rows) * (cols / kQuantBlock);
      for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(out.scale[i]))
          throw Error("tensor '" + t.name + "' holds a NaN or infinite scale (block " + std::to_string(i) + ")");
      return out;
    }
    check_finite(t);
    const size_t align = t.dtype == DType::F32 ? alignof(float) : alignof(uint16_t);
    if (t.dtype != DType::F16 && t.contiguous() && reinterpret_cast<uintptr_t>(t.data) % align == 0) return out;
    out.dtype = t.dtype == DType::F16 ? DType::F32 : t.dtype;
    auto& buf = owned.emplace_back(out.bytes());
    uint8_t* dst = buf.data();
    for_each_offset(t, [&](int64_t off) {
      if (out.dtype == DType::F32) {
        const float f = element_f32(t, off);
        std::memcpy(dst, &f, 4), dst += 4;
      } else {
        std::memcpy(dst, t.data + off * 2, 2), dst += 2;
      }
    });
    out.data = buf.data();
    return out;
  }

  TensorShapes shapes() const {
    TensorShapes out;
    for (const auto& t : tensors_) out.emplace(t.name, t.shape);
    return out;
  }

 private:
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, const TensorInfo*> by_name_;
};

// Refuses NaN and infinities. Contiguous tensors are scanned by their exponent bits,
// which keeps this pass over every weight cheap at load time.
void check_finite(const TensorInfo& t) {
  int64_t bad = -1;
  if (t.contiguous() && t.dtype != DType::F32) {
    const uint16_t mask = t.dtype == DType::BF16 ? 0x7F80 : 0x7C00;
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n && bad < 0; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      if ((h & mask) == mask) bad = i;
    }
  } else if (t.contiguous()) {
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n && bad < 0; ++i) {
      uint32_t b;
      std::memcpy(&b, t.data + 4 * i, 4);
      if ((b & 0x7F800000u) == 0x7F800000u) bad = i;
    }
  } else {
    int64_t i = 0;
    for_each_offset(t, [&](int64_t off) {
      if (bad < 0 && !std::isfinite(element_f32(t, off))) bad = i;
      ++i;
    });
  }
  if (bad >= 0) throw Error("tensor '" + t.name + "' holds NaN or infinite values (first at element " + std::to_string(bad) + ")");
}

// `in` converted to type `to`. Row by row into the bytes `in` occupies when the result is
// no larger and `mine` says nobody else reads them (each row is copied out before its
// slot is written, and a row's output never reaches rows not yet read), else into a new
// buffer appended to `owned`.
Matrix convert(const Matrix& in, DType to, bool mine, std::vector<std::vector<uint8_t>>& owned) {
  Matrix out{to, in.rows, in.cols, nullptr};
  const size_t rows = size_t(in.rows), cols = size_t(in.cols);
  const size_t bytes = out.bytes();
  uint8_t* dst;
  if (mine && bytes <= in.bytes()) {
    dst = const_cast<uint8_t*>(static_cast<const uint8_t*>(in.data));
  } else {
    dst = owned.emplace_back(bytes).data();
  }
  std::vector<float> row(cols);
  const TypeTraits& tt = type_traits(to);
  const size_t nb = cols / kQuantBlock, rq = matrix_value_bytes(to, 1, cols);
  // Quantized: the scales are written last, as their place may hold rows not yet read.
  std::vector<float> scales(tt.quantized ? rows * nb : 0);
  for (size_t r = 0; r < rows; ++r) {
    in.row(int(r), row.data());
    tt.from_float(row.data(), int(cols), dst + r * rq, tt.quantized ? scales.data() + r * nb : nullptr);
  }
  if (tt.quantized) {
    std::memcpy(dst + rows * rq, scales.data(), scales.size() * sizeof(float));
    out.scale = reinterpret_cast<const float*>(dst + rows * rq);
  }
  out.data = dst;
  return out;
}

}  // namespace

std::vector<int64_t> squeezed(const std::vector<int64_t>& s) {
  std::vector<int64_t> out;
  for (int64_t d : s)
    if (d != 1) out.push_back(d);
  return out;
}

Config read_config(const TensorShapes& shapes) {
  auto shape_of = [&](const std::string& name) -> const std::vector<int64_t>* {
    auto it = shapes.find(name);
    return it == shapes.end() ? nullptr : &it->second;
  };
  if (shape_of("blocks.0.att.time_decay") || shape_of("blocks.0.att.time_faaaa"))
    throw Error("this is an RWKV-4/5/6 checkpoint; only RWKV-7 (x070) models are supported");
  // Dimension d of tensor `name`, which must have `rank` dimensions.
  auto dim = [&](const std::string& name, size_t rank, size_t d, int64_t limit) {
    const std::vector<int64_t>* s = shape_of(name);
    if (!s) throw Error("model file lacks tensor '" + name + "'; is this an RWKV-7 (x070) checkpoint?");
    if (s->size() != rank)
      throw Error("tensor '" + name + "': expected " + std::to_string(rank) + " dimensions, found shape " + shape_string(*s));
    const int64_t v = (*s)[d];
    if (v < 1 || v > limit)
      throw Error("tensor '" + name + "' has shape " + shape_string(*s) + ": dimension " + std::to_string(v) +
                  " is outside the supported range 1.." + std::to_string(limit));
    return v;
  };
  Config c;
  // The layers: the highest blocks.N. index, and every one below it must be there.
  int64_t n = 0;
  for (const auto& [name, shape] : shapes) {
    if (name.compare(0, 7, "blocks.") != 0) continue;
    int64_t i = 0;
    size_t p = 7;
    while (p < name.size() && p < 15 && name[p] >= '0' && name[p] <= '9') i = i * 10 + (name[p++] - '0');
    if (p == 7 || p >= name.size() || name[p] != '.') continue;
    if (i + 1 > kMaxLayers) throw Error("tensor '" + name + "': more than " + std::to_string(kMaxLayers) + " layers");
    n = std::max(n, i + 1);
  }
  c.n_layer = int(n);
  if (c.n_layer == 0) throw Error("model file has no 'blocks.N.' tensors; is this an RWKV-7 (x070) checkpoint?");
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string key = "blocks." + std::to_string(i) + ".ln1.weight";
    if (!shape_of(key))
      throw Error("model file lacks tensor '" + key + "' (layers go up to " + std::to_string(c.n_layer - 1) + ")");
  }
  c.V = int(dim("emb.weight", 2, 0, kMaxVocab));
  c.C = int(dim("emb.weight", 2, 1, kMaxWidth));
  c.H = int(dim("blocks.0.att.r_k", 2, 0, kMaxWidth));
  c.N = int(dim("blocks.0.att.r_k", 2, 1, kMaxWidth));
  if (int64_t(c.H) * c.N != c.C)
    throw Error("tensor 'blocks.0.att.r_k' has shape " + shape_string({c.H, c.N}) + " but heads x head size must equal n_embd " +
                std::to_string(c.C));
  c.F = int(dim("blocks.0.ffn.key.weight", 2, 0, 8 * kMaxWidth));
  c.Dw = int(dim("blocks.0.att.w1", 2, 1, kMaxWidth));
  c.Da = int(dim("blocks.0.att.a1", 2, 1, kMaxWidth));
  c.Dg = int(dim("blocks.0.att.g1", 2, 1, kMaxWidth));
  c.Dv = c.n_layer > 1 ? int(dim("blocks.1.att.v1", 2, 1, kMaxWidth)) : 0;
  return c;
}

std::vector<TensorSlot> model_layout(const Config& c, Weights& w) {
  const int64_t C = c.C;
  std::vector<TensorSlot> out;
  auto vec = [&](std::string name, std::vector<int64_t> shape, const float*& field) {
    out.push_back({std::move(name), std::move(shape), &field, nullptr, false});
  };
  auto mat = [&](std::string name, int64_t rows, int64_t cols, Matrix& field, bool large) {
    out.push_back({std::move(name), {rows, cols}, nullptr, &field, large});
  };
  mat("emb.weight", c.V, C, w.emb, true);
  vec("blocks.0.ln0.weight", {C}, w.ln0_w);
  vec("blocks.0.ln0.bias", {C}, w.ln0_b);
  vec("ln_out.weight", {C}, w.ln_out_w);
  vec("ln_out.bias", {C}, w.ln_out_b);
  mat("head.weight", c.V, C, w.head, true);
  w.layers.assign(size_t(c.n_layer), LayerWeights{});
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const std::string a = b + "att.";
    LayerWeights& l = w.layers[size_t(i)];
    const std::vector<int64_t> mix{1, 1, C};
    vec(b + "ln1.weight", {C}, l.ln1_w);
    vec(b + "ln1.bias", {C}, l.ln1_b);
    vec(b + "ln2.weight", {C}, l.ln2_w);
    vec(b + "ln2.bias", {C}, l.ln2_b);
    vec(a + "x_r", mix, l.x_r);
    vec(a + "x_w", mix, l.x_w);
    vec(a + "x_k", mix, l.x_k);
    vec(a + "x_v", mix, l.x_v);
    vec(a + "x_a", mix, l.x_a);
    vec(a + "x_g", mix, l.x_g);
    vec(a + "w0", mix, l.w0);
    vec(a + "a0", mix, l.a0);
    vec(a + "k_k", mix, l.k_k);
    vec(a + "k_a", mix, l.k_a);
    vec(a + "r_k", {c.H, c.N}, l.r_k);
    mat(a + "w1", C, c.Dw, l.w1, false);
    mat(a + "w2", c.Dw, C, l.w2, false);
    mat(a + "a1", C, c.Da, l.a1, false);
    mat(a + "a2", c.Da, C, l.a2, false);
    mat(a + "g1", C, c.Dg, l.g1, false);
    mat(a + "g2", c.Dg, C, l.g2, false);
    if (i > 0) {  // layer 0 takes v as v_first and never uses v0/v1/v2, present or not
      vec(a + "v0", mix, l.v0);
      mat(a + "v1", C, c.Dv, l.v1, false);
      mat(a + "v2", c.Dv, C, l.v2, false);
    } else {
      l.v0 = nullptr;
    }
    mat(a + "receptance.weight", C, C, l.receptance, true);
    mat(a + "key.weight", C, C, l.key, true);
    mat(a + "value.weight", C, C, l.value, true);
    mat(a + "output.weight", C, C, l.output, true);
    vec(a + "ln_x.weight", {C}, l.ln_x_w);
    vec(a + "ln_x.bias", {C}, l.ln_x_b);
    vec(b + "ffn.x_k", mix, l.ffn_x_k);
    mat(b + "ffn.key.weight", c.F, C, l.ffn_key, true);
    mat(b + "ffn.value.weight", C, c.F, l.ffn_value, true);
  }
  return out;
}

size_t Model::memory_bytes() const {
  size_t n = file_.size + vectors_.capacity() * sizeof(float);
  for (const auto& b : blocks_) n += b.size;
  for (const auto& o : owned_) n += o.size();
  return n;
}

std::unique_ptr<Model> Model::load(Bytes file, const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  CheckpointExtras extras;
  if (options.matrices) extras.large = *options.matrices;
  const Loader L(read_checkpoint(m->file_.data.get(), m->file_.size, extras));
  m->owned_ = std::move(extras.owned);
  m->vocab_text_ = std::move(extras.vocab);
  m->vocab_ = m->vocab_text_.empty() ? rwkv_file_vocab(m->file_.data.get(), m->file_.size) : std::string_view(m->vocab_text_);

  const Config& c = m->config_ = read_config(L.shapes());
  // Small tensors become f32 in one buffer, sized up front so pointers stay put.
  constexpr int kVectorsPerLayer = 19;
  m->vectors_.reserve(size_t(kVectorsPerLayer * c.n_layer + 4) * size_t(c.C));
  auto vec = [&](const std::string& name, std::vector<int64_t> shape) -> const float* {
    const TensorInfo& t = L.need(name, shape, true);
    if (is_quantized(t.dtype))
      throw Error("tensor '" + name + "' is " + dtype_name(t.dtype) + ", but only matrices may be quantized");
    check_finite(t);
    const size_t at = m->vectors_.size();
    if (at + size_t(t.numel()) > m->vectors_.capacity()) throw Error("internal: vector buffer too small");
    for_each_offset(t, [&](int64_t off) { m->vectors_.push_back(element_f32(t, off)); });
    const float* p = m->vectors_.data() + at;
    m->held_.push_back({name, DType::F32, t.shape, reinterpret_cast<const uint8_t*>(p), size_t(t.numel()) * 4});
    return p;
  };
  // Matrices stay where they are when they can be used in place, and are converted as
  // `options` asks (`large`: the big ones, which the quantized types apply to).
  auto mat = [&](const std::string& name, int64_t rows, int64_t cols, bool large) -> Matrix {
    const TensorInfo& t = L.need(name, {rows, cols}, false);
    Matrix out = L.matrix(t, m->owned_);
    std::optional<DType> to = options.matrices;
    if (to && is_quantized(*to) && (!large || cols % kQuantBlock != 0)) to.reset();
    if (!to && is_quantized(out.dtype) && !large)
      throw Error("tensor '" + name + "' is " + dtype_name(out.dtype) + ", but the low-rank matrices cannot be quantized");
    if (to && *to != out.dtype) out = convert(out, *to, out.data != t.data || L.exclusive(t), m->owned_);
    m->held_.push_back({name, out.dtype, {rows, cols}, static_cast<const uint8_t*>(out.data), out.bytes()});
    return out;
  };

  for (const TensorSlot& slot : model_layout(c, m->weights_)) {
    if (slot.vec) *slot.vec = vec(slot.name, slot.shape);
    else *slot.mat = mat(slot.name, slot.shape[0], slot.shape[1], slot.large);
  }
  return m;
}

}  // namespace rwkv
