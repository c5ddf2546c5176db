#pragma once
// An RWKV-7 (x070) model: dimensions read from the checkpoint, weights kept as views
// into the file's bytes (bf16 stays bf16, f32 stays f32). Immutable once loaded, so
// one Model can serve any number of States.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/matrix.h"
#include "formats/checkpoint.h"

namespace rwkv {

struct Config {
  int n_layer = 0;
  int C = 0;          // n_embd
  int H = 0, N = 0;   // heads, head size (H * N == C)
  int F = 0;          // ffn width
  int V = 0;          // vocabulary size
  int Dw = 0, Da = 0, Dv = 0, Dg = 0;  // low-rank sizes of the w, a, v, g paths
  // Floats per layer in a State: att_x_prev (C), S (H, N, N), ffn_x_prev (C).
  size_t layer_state_size() const { return size_t(2) * C + size_t(H) * N * N; }
  size_t state_size() const { return size_t(n_layer) * layer_state_size(); }
  // The dimensions under the names of a .rwkv file's "config" (docs/format.md).
  std::vector<std::pair<std::string, int64_t>> entries() const {
    return {{"n_layer", n_layer}, {"n_embd", C}, {"n_head", H}, {"head_size", N}, {"ffn_size", F},
            {"vocab_size", V},     {"lora_w", Dw}, {"lora_a", Da}, {"lora_v", Dv},   {"lora_g", Dg}};
  }
};

struct LayerWeights {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;              // (C)
  const float *x_r, *x_w, *x_k, *x_v, *x_a, *x_g;          // (C) token-shift mixes
  const float *w0, *a0, *v0, *k_k, *k_a;                   // (C); v0 unused in layer 0
  const float* r_k;                                        // (H, N)
  Matrix w1, w2, a1, a2, v1, v2, g1, g2;                   // (C, D) and (D, C), used as x @ m
  Matrix receptance, key, value, output;                   // (C, C), y = W x
  const float *ln_x_w, *ln_x_b;                            // (C) GroupNorm over H groups
  const float* ffn_x_k;                                    // (C)
  Matrix ffn_key;                                          // (F, C)
  Matrix ffn_value;                                        // (C, F)
};

struct Weights {
  Matrix emb;                       // (V, C)
  const float *ln0_w, *ln0_b;       // (C)
  std::vector<LayerWeights> layers; // (n_layer)
  const float *ln_out_w, *ln_out_b; // (C)
  Matrix head;                      // (V, C)
};

// One tensor a model uses: its checkpoint key, the shape it must have, and the field of
// Weights that points at it: a vector (held as F32; size-1 dimensions may differ) or a
// matrix (`large`: one of those the quantized types apply to).
struct TensorSlot {
  std::string name;
  std::vector<int64_t> shape;
  const float** vec = nullptr;
  Matrix* mat = nullptr;
  bool large = false;
};

// The shape of each tensor of a file, by name.
using TensorShapes = std::unordered_map<std::string, std::vector<int64_t>>;

// The dimensions of the model a file holds, read from its tensors' shapes. Throws
// rwkv::Error for another architecture, missing layers or dimensions out of range.
Config read_config(const TensorShapes& shapes);

// The tensors of a model of config `c`, in the model's order (emb, ln0, ln_out, head, then
// layer by layer), pointing into `w` (whose layers are made here).
std::vector<TensorSlot> model_layout(const Config& c, Weights& w);

// The vector shape of a slot's tensor without its size-1 dimensions ((1, 1, C) is (C)).
std::vector<int64_t> squeezed(const std::vector<int64_t>& shape);

// How to hold the weights. `matrices` converts the matrices on load: Q8_0 / Q4_0 the
// large ones (emb, head, receptance/key/value/output, ffn key/value; the LoRAs stay as
// they are), F32 / BF16 every matrix. Unset: as in the file (F16 becomes F32).
struct LoadOptions {
  std::optional<DType> matrices;
};

class Model {
 public:
  // Builds a model from a checkpoint (.pth, .safetensors, GGUF or our own .rwkv format) held
  // in `file`, which the model keeps: weights stay views into it (or, converted on load,
  // are rewritten in place when they shrink and the bytes are theirs alone). Throws
  // rwkv::Error naming the key, the expected and the found shape on any mismatch.
  static std::unique_ptr<Model> load(Bytes file, const LoadOptions& options = {});

  const Config& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  DType weight_dtype() const { return weights_.head.dtype; }
  // Every tensor the model uses, in checkpoint order of first use (emb, ln0, ...).
  const std::vector<HeldTensor>& tensors() const { return held_; }
  // The tokenizer vocabulary embedded in the file (our own format, or a GGUF's metadata
  // as vocabulary-file text), else empty.
  std::string_view vocab() const { return vocab_; }
  // Bytes held: the file plus whatever had to be converted (f16 -> f32, small vectors).
  size_t memory_bytes() const;

 private:
  friend class StreamLoader;
  Model() = default;
  Bytes file_;                 // the file (Model::load)
  std::vector<Bytes> blocks_;  // or the blocks a StreamLoader filled
  std::vector<float> vectors_;              // small (C)-sized tensors, as f32
  std::vector<std::vector<uint8_t>> owned_; // matrices converted at load (f16, strided, misaligned)
  Config config_;
  Weights weights_;
  std::vector<HeldTensor> held_;
  std::string vocab_text_;  // a vocabulary from the file's metadata (GGUF)
  std::string_view vocab_;  // a view into file_ or vocab_text_
};

}  // namespace rwkv
