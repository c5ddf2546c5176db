#pragma once
// Grammars for constrained decoding: the GBNF-like notation of docs/grammar.md, parsed
// and compiled into a small program over bytes (character classes and `.` become the
// UTF-8 byte sequences of their code points), and the pushdown automaton that runs it.
//
// The automaton's state is a set of threads, each a program position waiting for a byte
// and the stack of positions to return to from rule calls (interned, so equal stacks
// share one id). A state is reduced to an id the first time it is reached and its
// transitions are cached per byte class, so a grammar becomes a DFA built lazily on the
// states that generation actually visits.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace rwkv {

class Grammar {
 public:
  // Parses and compiles `text` (docs/grammar.md); the start rule is `root`. Throws
  // rwkv::Error "grammar: line L, column C: ..." naming the fault (syntax, an undefined
  // or twice-defined rule, left recursion, a grammar too large after repetitions).
  static Grammar parse(std::string_view text);

  // One instruction. Threads wait only at Bytes; the others are followed at once.
  struct Inst {
    enum class Op : uint8_t { Bytes, Jump, Split, Call, Return } op;
    int32_t next = -1;  // Bytes, Jump: the instruction after; Split: the first branch; Call: where to return
    int32_t arg = -1;   // Bytes: index into byte_sets(); Split: the second branch; Call: the rule's first instruction
  };
  using ByteSet = std::array<uint64_t, 4>;  // 256 bits

  const std::vector<Inst>& program() const { return program_; }
  const std::vector<ByteSet>& byte_sets() const { return sets_; }
  int32_t start() const { return start_; }  // root's first instruction
  // Bytes that every byte set treats alike share a class: 0 .. classes() - 1.
  const std::array<uint8_t, 256>& byte_class() const { return byte_class_; }
  int classes() const { return classes_; }

  static bool contains(const ByteSet& s, uint8_t b) { return (s[b >> 6] >> (b & 63)) & 1; }

 private:
  friend class GrammarCompiler;
  Grammar() = default;

  std::vector<Inst> program_;
  std::vector<ByteSet> sets_;
  int32_t start_ = -1;
  std::array<uint8_t, 256> byte_class_{};
  int classes_ = 1;
};

class GrammarAutomaton {
 public:
  using StateId = int32_t;
  static constexpr StateId kDead = -1;  // no thread left: the bytes so far are no prefix of a match

  explicit GrammarAutomaton(Grammar grammar);

  StateId start() const { return start_; }
  // The state after one more byte (kDead stays kDead).
  StateId next(StateId s, uint8_t byte) {
    if (s == kDead) return kDead;
    const size_t at = size_t(s) * size_t(classes_) + grammar_.byte_class()[byte];
    const StateId t = transitions_[at];
    return t != kUnknown ? t : compute(s, byte);
  }
  StateId walk(StateId s, std::string_view bytes) {
    for (const char c : bytes) s = next(s, uint8_t(c));
    return s;
  }
  // The bytes so far are a complete match.
  bool accepting(StateId s) const { return s != kDead && states_[size_t(s)].accepting; }
  // Complete, and no byte may follow: the grammar has ended.
  bool ended(StateId s) const { return accepting(s) && states_[size_t(s)].threads.empty(); }

  size_t states() const { return states_.size(); }
  // Memory held by the cached states, transitions and stacks (an estimate).
  size_t memory_bytes() const { return bytes_; }
  // Drops every cached state but `keep`, which is rebuilt and returned under a new id
  // (ids handed out before are invalid afterwards). Bounds the memory of long runs.
  StateId compact(StateId keep);

 private:
  static constexpr StateId kUnknown = -2;
  using Thread = uint64_t;  // position << 32 | stack id
  struct State {
    std::vector<Thread> threads;  // sorted
    bool accepting = false;
  };
  struct VectorHash {
    size_t operator()(const std::vector<Thread>& v) const;
  };
  StateId compute(StateId s, uint8_t byte);
  // Follows the instructions from `pc` with `stack` until threads wait at Bytes.
  void closure(int32_t pc, int32_t stack);
  int32_t push(int32_t return_pc, int32_t stack);
  StateId intern();  // the state of pending_ / pending_accept_

  Grammar grammar_;
  int classes_;
  StateId start_ = kDead;
  std::vector<State> states_;
  std::vector<StateId> transitions_;  // (states, classes)
  std::unordered_map<std::vector<Thread>, StateId, VectorHash> by_threads_[2];  // [accepting]
  std::vector<std::pair<int32_t, int32_t>> stacks_;  // id -> (return position, parent id); 0 is empty
  std::unordered_map<uint64_t, int32_t> stack_ids_;
  size_t bytes_ = 0;  // memory_bytes()
  // Scratch of compute() and closure().
  std::vector<Thread> pending_;
  bool pending_accept_ = false;
  std::vector<std::pair<int32_t, int32_t>> work_;
  std::unordered_set<uint64_t> seen_;
};

}  // namespace rwkv
