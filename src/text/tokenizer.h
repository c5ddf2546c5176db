#pragma once
// The RWKV World tokenizer (greedy longest match over bytes, docs/tokenizer.md), the
// byte-level tokenizer of V = 256 models, and a streaming UTF-8 decoder for generated
// bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv {

class Tokenizer {
 public:
  // Parses the official vocabulary file (rwkv_vocab_v20230424.txt): one `ID REPR LEN`
  // per line, REPR a Python str literal (encoded as UTF-8) or bytes literal, LEN its byte
  // length. IDs are >= 1 and unique, byte strings non-empty and unique. Throws rwkv::Error
  // naming the line and the fault. Blank lines are skipped.
  static Tokenizer from_vocab_text(std::string_view text);
  // Token t is the single byte t (t = 0..255); token 0 is the byte 0x00.
  static Tokenizer byte_level();

  // Greedy longest match over the bytes (any bytes: NUL and invalid UTF-8 included).
  // Throws rwkv::Error only when a byte has no token at all (never for the World and
  // byte-level vocabularies, which hold every single byte).
  std::vector<int32_t> encode(std::string_view bytes) const;
  // Concatenated token bytes; a World id without an entry (such as 0) adds nothing.
  // Throws rwkv::Error naming an id outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids) const;
  // The bytes of one token (a view into this tokenizer); same errors as decode.
  std::string_view token_bytes(int32_t id) const;
  // Largest id + 1: 65530 for World, 256 for byte-level.
  size_t vocab_size() const { return offsets_.size() - 1; }

 private:
  // One cell of a double-array trie: the child of node s on byte c is cell
  // t = cells_[s].base + c when cells_[t].check == s. Cell 0 is the root.
  struct Cell {
    int32_t base = 0;    // children at base + byte; 0 for nodes without children
    int32_t check = -1;  // parent cell, -1 when the cell is free
    int32_t token = -1;  // id of the token ending here, -1 when none
  };
  struct Entry {
    std::string_view bytes;  // view into blob_
    uint64_t prefix;         // sort key: the first 8 bytes
    int32_t id;
  };

  Tokenizer() = default;
  // Takes the token bytes of every id (offsets_ has vocab_size() + 1 entries into blob_);
  // builds the trie. `line_of` (may be empty) maps ids to vocabulary lines for errors.
  void build(const std::vector<uint32_t>& line_of);
  void build_trie(const std::vector<Entry>& entries);

  std::string blob_;               // all token bytes, in id order
  std::vector<uint32_t> offsets_;  // id -> [offsets_[id], offsets_[id + 1]) in blob_
  std::vector<Cell> cells_;        // the trie, padded so that base + 255 is always in range
};

// Turns a stream of token bytes into text that never ends inside a UTF-8 character.
class Utf8Stream {
 public:
  // Everything received so far that ends on a character boundary and has not been
  // returned yet. An incomplete trailing sequence (at most 3 bytes) is held back while
  // later bytes could still complete it; bytes that can never form a valid character
  // are returned as they are, so the returned bytes add up to the bytes pushed.
  std::string push(std::string_view bytes);
  // The held-back bytes (an incomplete character at the end of the stream).
  std::string flush();

 private:
  std::string held_;  // at most 3 bytes: a valid, still incomplete UTF-8 prefix
};

}  // namespace rwkv
