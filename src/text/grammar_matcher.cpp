#include "text/grammar_matcher.h"

#include <algorithm>
#include <limits>

#include "base/error.h"

namespace rwkv {
namespace {

constexpr size_t kMaskCacheBytes = size_t(32) << 20;      // allowed() bitsets kept per state
constexpr size_t kAutomatonBytes = size_t(64) << 20;      // cached automaton states before compact()

// Bytes for a message in double quotes: printable ASCII as it is (" and \ escaped by
// a backslash), the rest as \xHH.
std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c >= 0x20 && c < 0x7F) {
      out += c;
    } else {
      out += "\\x";
      out += "0123456789abcdef"[uint8_t(c) >> 4];
      out += "0123456789abcdef"[uint8_t(c) & 15];
    }
  }
  return out;
}

}  // namespace

TokenTrie::TokenTrie(const Tokenizer& tokenizer, size_t vocab, int32_t end_token)
    : vocab_(vocab), end_token_(end_token), offsets_(vocab + 1, 0) {
  std::vector<std::pair<std::string_view, int32_t>> tokens;
  for (size_t id = 0; id < vocab; ++id) {
    offsets_[id] = uint32_t(blob_.size());
    if (id >= tokenizer.vocab_size() || int32_t(id) == end_token) continue;
    const std::string_view b = tokenizer.token_bytes(int32_t(id));
    if (b.size() > std::numeric_limits<uint16_t>::max())
      throw Error("grammar: token " + std::to_string(id) + " is longer than 65535 bytes");
    blob_ += b;
  }
  offsets_[vocab] = uint32_t(blob_.size());
  for (size_t id = 0; id < vocab; ++id)
    if (offsets_[id + 1] > offsets_[id]) tokens.emplace_back(bytes(int32_t(id)), int32_t(id));
  std::sort(tokens.begin(), tokens.end());
  // Depth-first order falls out of the sorted strings: each token shares its longest
  // common prefix with the path to the previous one.
  std::vector<int32_t> path;  // node at each depth - 1 of the current path
  std::string_view prev;
  for (const auto& [b, id] : tokens) {
    size_t common = 0;
    while (common < prev.size() && common < b.size() && prev[common] == b[common]) ++common;
    for (; path.size() > common; path.pop_back()) skip_[size_t(path.back())] = int32_t(byte_.size());
    for (size_t d = common; d < b.size(); ++d) {
      path.push_back(int32_t(byte_.size()));
      byte_.push_back(uint8_t(b[d]));
      depth_.push_back(uint16_t(d + 1));
      skip_.push_back(-1);
      token_.push_back(-1);
    }
    if (token_[size_t(path.back())] >= 0) throw Error("grammar: tokens " + std::to_string(token_[size_t(path.back())]) + " and " + std::to_string(id) + " have the same bytes");
    token_[size_t(path.back())] = id;
    max_depth_ = std::max(max_depth_, b.size());
    prev = b;
  }
  for (; !path.empty(); path.pop_back()) skip_[size_t(path.back())] = int32_t(byte_.size());
}

std::string_view TokenTrie::bytes(int32_t id) const {
  if (id < 0 || size_t(id) >= vocab_) return {};
  return std::string_view(blob_).substr(offsets_[size_t(id)], offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
}

GrammarMatcher::GrammarMatcher(Grammar grammar, std::shared_ptr<const TokenTrie> trie)
    : automaton_(std::move(grammar)), trie_(std::move(trie)), state_(automaton_.start()) {
  if (state_ == GrammarAutomaton::kDead) throw Error("grammar: matches nothing");
  path_.resize(trie_->max_depth() + 1);
}

void GrammarMatcher::reset() {
  state_ = automaton_.start();
  finished_ = false;
}

void GrammarMatcher::walk(std::vector<uint64_t>& bits) {
  const TokenTrie& t = *trie_;
  bits.assign((t.vocab() + 63) / 64, 0);
  if (finished_) return;
  path_[0] = state_;
  const size_t n = t.byte_.size();
  for (size_t i = 0; i < n;) {
    const size_t d = t.depth_[i];
    const auto s = automaton_.next(path_[d - 1], t.byte_[i]);
    if (s == GrammarAutomaton::kDead) {
      i = size_t(t.skip_[i]);
      continue;
    }
    path_[d] = s;
    if (const int32_t id = t.token_[i]; id >= 0) bits[size_t(id) >> 6] |= uint64_t(1) << (id & 63);
    ++i;
  }
  if (const int32_t end = t.end_token(); end >= 0 && automaton_.accepting(state_)) bits[size_t(end) >> 6] |= uint64_t(1) << (end & 63);
}

const std::vector<uint64_t>& GrammarMatcher::allowed() {
  if (finished_) {
    walk(uncached_);
    return uncached_;
  }
  if (const auto it = masks_.find(state_); it != masks_.end()) return it->second;
  const size_t bytes = (trie_->vocab() + 63) / 64 * 8;
  if ((masks_.size() + 1) * bytes > kMaskCacheBytes) {
    walk(uncached_);
    return uncached_;
  }
  auto& bits = masks_[state_];
  walk(bits);
  return bits;
}

bool GrammarMatcher::allows(int32_t token) {
  if (token < 0 || size_t(token) >= trie_->vocab()) return false;
  return (allowed()[size_t(token) >> 6] >> (token & 63)) & 1;
}

void GrammarMatcher::mask(std::span<float> logits) {
  if (logits.size() != trie_->vocab())
    throw Error("grammar: got " + std::to_string(logits.size()) + " logits for a vocabulary of " + std::to_string(trie_->vocab()));
  const auto& bits = allowed();
  if (std::all_of(bits.begin(), bits.end(), [](uint64_t w) { return w == 0; }))
    throw Error("grammar: no token of the vocabulary can continue the text here (the vocabulary lacks the bytes the grammar needs next)");
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w < bits.size(); ++w) {
    const uint64_t word = bits[w];
    if (word == ~uint64_t(0)) continue;
    const size_t end = std::min(logits.size(), (w + 1) * 64);
    for (size_t t = w * 64; t < end; ++t)
      if (!((word >> (t & 63)) & 1)) logits[t] = kNegInf;
  }
}

void GrammarMatcher::accept(int32_t token) {
  if (!allows(token))
    throw Error("grammar: token " + std::to_string(token) +
                (token == trie_->end_token() ? " (end of text)" : " \"" + printable(trie_->bytes(token)) + "\"") + " is not allowed here");
  if (token == trie_->end_token()) {
    finished_ = true;
    return;
  }
  state_ = automaton_.walk(state_, trie_->bytes(token));
  if (automaton_.memory_bytes() > kAutomatonBytes) {
    state_ = automaton_.compact(state_);
    masks_.clear();
  }
}

}  // namespace rwkv
