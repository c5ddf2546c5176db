#include "model/state_file.h"

#include <cmath>
#include <unordered_map>

namespace rwkv {

void load_state_file(const uint8_t* data, size_t size, State& state) {
  const Config& c = state.config();
  std::unordered_map<std::string, TensorInfo> by_name;
  for (auto& t : read_checkpoint(data, size)) by_name.emplace(t.name, std::move(t));
  const std::vector<int64_t> expect{c.H, c.N, c.N};
  std::vector<float> out(state.size(), 0.0f);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string key = "blocks." + std::to_string(i) + ".att.time_state";
    auto it = by_name.find(key);
    if (it == by_name.end())
      throw Error("state file lacks tensor '" + key + "' (expected shape " + shape_string(expect) +
                  "); is it a state-tuning file for this model?");
    const TensorInfo& t = it->second;
    if (t.shape != expect)
      throw Error("tensor '" + key + "': expected shape " + shape_string(expect) + ", found " + shape_string(t.shape) +
                  " (a state file for another model size?)");
    float* S = out.data() + i * c.layer_state_size() + c.C;
    size_t n = 0;
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t p = 0; p < c.N; ++p)
        for (int64_t q = 0; q < c.N; ++q) {
          const float v = element_f32(t, h * t.stride[0] + p * t.stride[1] + q * t.stride[2]);
          if (!std::isfinite(v)) throw Error("tensor '" + key + "' holds NaN or infinite values");
          S[n++] = v;
        }
  }
  std::copy(out.begin(), out.end(), state.data());
}

}  // namespace rwkv
