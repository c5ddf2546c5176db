#pragma once
// A loaded model and its vocabulary as a .rwkv file (docs/format.md): what `convert`
// writes. Lives above the model and the tokenizer because it checks that the two fit.
#include <string_view>

#include "formats/rwkv_writer.h"
#include "model/model.h"

namespace rwkv {

// The image of `model` (every tensor as held: converted or quantized ones included) with
// an optional vocabulary (`vocab`, in kRwkvVocabFormat: checked by parsing it, and it may
// not have more tokens than the model) and metadata. The parts stay valid while the
// model, `vocab`'s bytes and the image live.
RwkvFileImage write_model_file(const Model& model, std::string_view vocab = {}, const RwkvMetadata& metadata = {});

}  // namespace rwkv
