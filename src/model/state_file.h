#pragma once
// State-tuned initial states: a checkpoint (.pth or .safetensors) holding
// `blocks.N.att.time_state` of shape (H, N, N) for every layer, as written by RWKV
// state tuning. Its layout is the wkv state's, [head][value p][key q]
// (docs/computation.md#state-tuning-files).
#include <cstdint>

#include "model/runner.h"

namespace rwkv {

// Fills `state` from the file in data[0, size): wkv parts from time_state, token-shift
// parts zero. Throws rwkv::Error naming the key and shapes when the file does not fit
// the model; `state` is untouched then.
void load_state_file(const uint8_t* data, size_t size, State& state);

}  // namespace rwkv
