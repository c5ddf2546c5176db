#include "text/model_file.h"

#include <string>

#include "base/error.h"
#include "text/tokenizer.h"

namespace rwkv {

RwkvFileImage write_model_file(const Model& model, std::string_view vocab, const RwkvMetadata& metadata) {
  const Config& c = model.config();
  if (!vocab.empty()) {
    const size_t n = Tokenizer::from_vocab_text(vocab).vocab_size();
    if (n > size_t(c.V))
      throw Error("rwkv file writer: the vocabulary has " + std::to_string(n) + " tokens but the model only " +
                  std::to_string(c.V) + ": wrong vocabulary file?");
  }
  return write_rwkv_file(c.entries(), model.tensors(), vocab, metadata);
}

}  // namespace rwkv
