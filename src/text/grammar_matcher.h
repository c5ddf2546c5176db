#pragma once
// Constrained decoding (docs/grammar.md): which tokens a grammar allows next, found by
// walking the vocabulary's byte strings as a trie against the grammar automaton's state
// (a subtree is skipped as soon as its prefix is rejected), and the state advanced by
// the bytes of each token chosen. Correct across token boundaries (a token may finish
// one element and start the next) and inside UTF-8 characters (the automaton reads
// bytes, so a token may end in the middle of a character).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/grammar.h"
#include "text/tokenizer.h"

namespace rwkv {

// The byte strings of a vocabulary as a trie in depth-first order: node i's subtree is
// [i, skip[i]), so a rejected prefix skips its whole subtree in one jump.
class TokenTrie {
 public:
  // Every token id < vocab with bytes, except `end_token` (the end-of-text id, -1 for
  // none), which a matcher treats apart. Ids the tokenizer does not know have no bytes.
  TokenTrie(const Tokenizer& tokenizer, size_t vocab, int32_t end_token);

  size_t vocab() const { return vocab_; }
  int32_t end_token() const { return end_token_; }
  std::string_view bytes(int32_t id) const;  // the token's bytes (empty for ids outside the trie)
  size_t max_depth() const { return max_depth_; }

 private:
  friend class GrammarMatcher;
  size_t vocab_;
  int32_t end_token_;
  std::string blob_;               // token bytes, in id order
  std::vector<uint32_t> offsets_;  // (vocab + 1) id -> [offsets_[id], offsets_[id + 1]) in blob_
  std::vector<uint8_t> byte_;      // (nodes) the byte leading into node i
  std::vector<uint16_t> depth_;    // (nodes) 1 for children of the root
  std::vector<int32_t> skip_;      // (nodes) the first node after i's subtree
  std::vector<int32_t> token_;     // (nodes) the token ending at node i, or -1
  size_t max_depth_ = 0;
};

class GrammarMatcher {
 public:
  // Starts at the beginning of `grammar`. The trie fixes the vocabulary and the end token.
  GrammarMatcher(Grammar grammar, std::shared_ptr<const TokenTrie> trie);

  // One bit per token id (vocab bits, in 64-bit words): set when the token may come
  // next. The end token is allowed only where the grammar may end; nothing is allowed
  // once it has been accepted. Cached per automaton state.
  const std::vector<uint64_t>& allowed();
  bool allows(int32_t token);
  // Sets the logits (vocab of them) of the tokens not allowed to -inf.
  void mask(std::span<float> logits);
  // Advances by the token's bytes. Throws rwkv::Error when it is not allowed.
  void accept(int32_t token);

  bool can_end() const { return !finished_ && automaton_.accepting(state_); }  // the text so far is a complete match
  bool ended() const { return finished_ || automaton_.ended(state_); }         // and nothing may follow
  // Back to the beginning of the grammar (the caches are kept).
  void reset();

 private:
  void walk(std::vector<uint64_t>& bits);

  GrammarAutomaton automaton_;
  std::shared_ptr<const TokenTrie> trie_;
  GrammarAutomaton::StateId state_;
  bool finished_ = false;  // the end token was accepted
  std::unordered_map<GrammarAutomaton::StateId, std::vector<uint64_t>> masks_;  // allowed() per state
  std::vector<uint64_t> uncached_;                 // allowed() once the cache is full
  std::vector<GrammarAutomaton::StateId> path_;    // walk(): the state at each trie depth
};

}  // namespace rwkv
