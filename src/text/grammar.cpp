#include "text/grammar.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "base/error.h"
#include "base/utf8.h"

namespace rwkv {
namespace {

constexpr size_t kMaxProgram = size_t(1) << 20;  // instructions, after repetitions are expanded
constexpr int kMaxRepeat = 100000;                // the largest m, n of {m,n}
constexpr int kMaxNesting = 200;                  // parentheses within parentheses
constexpr size_t kMaxThreads = 100000;            // parses alive at once in one state
constexpr size_t kMaxStacks = size_t(1) << 26;    // distinct return stacks

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // code points, inclusive

// The parsed form of a rule body.
struct Node {
  enum class Kind { Literal, Class, Ref, Seq, Alt, Repeat } kind;
  explicit Node(Kind k) : kind(k) {}
  std::string bytes;  // Literal: UTF-8
  Ranges ranges;      // Class: sorted, disjoint, no surrogates, not empty
  int rule = -1;      // Ref
  std::vector<Node> items;  // Seq, Alt; Repeat: the one repeated
  int min = 0, max = -1;    // Repeat; max -1: no upper bound
};

// Sorted, merged, without the surrogates (which UTF-8 cannot encode); complemented in
// [0, U+10FFFF] when `negate`.
Ranges normalise(Ranges r, bool negate) {
  std::sort(r.begin(), r.end());
  Ranges merged;
  for (const auto& [lo, hi] : r) {
    if (!merged.empty() && lo <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, hi);
    else merged.emplace_back(lo, hi);
  }
  if (negate) {
    Ranges c;
    uint32_t from = 0;
    for (const auto& [lo, hi] : merged) {
      if (lo > from) c.emplace_back(from, lo - 1);
      from = hi + 1;
    }
    if (from <= 0x10FFFF) c.emplace_back(from, 0x10FFFF);
    merged = std::move(c);
  }
  Ranges out;
  for (const auto& [lo, hi] : merged) {
    if (lo < 0xD800) out.emplace_back(lo, std::min<uint32_t>(hi, 0xD7FF));
    if (hi > 0xDFFF) out.emplace_back(std::max<uint32_t>(lo, 0xE000), hi);
  }
  return out;
}

// The UTF-8 encodings of the code points [lo, hi] as sequences of byte ranges, each
// sequence a run of code points whose encodings have one length and vary only in the
// trailing positions (the split of Russ Cox's utf8-ranges).
using ByteSeq = std::vector<std::pair<uint8_t, uint8_t>>;
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out) {
  std::vector<std::pair<uint32_t, uint32_t>> todo{{lo, hi}};
  while (!todo.empty()) {
    auto [s, e] = todo.back();
    todo.pop_back();
    bool split = false;
    for (const uint32_t max : {0x7Fu, 0x7FFu, 0xFFFFu}) {
      if (s <= max && max < e) {
        todo.emplace_back(max + 1, e);
        todo.emplace_back(s, max);
        split = true;
        break;
      }
    }
    if (split) continue;
    if (e <= 0x7F) {
      out.push_back({{uint8_t(s), uint8_t(e)}});
      continue;
    }
    for (int i = 1; i <= 3 && !split; ++i) {
      const uint32_t m = (uint32_t(1) << (6 * i)) - 1;
      if ((s & ~m) == (e & ~m)) continue;
      if ((s & m) != 0) {
        todo.emplace_back((s | m) + 1, e);
        todo.emplace_back(s, s | m);
        split = true;
      } else if ((e & m) != m) {
        todo.emplace_back(e & ~m, e);
        todo.emplace_back(s, (e & ~m) - 1);
        split = true;
      }
    }
    if (split) continue;
    std::string a, b;
    append_utf8(a, s);
    append_utf8(b, e);
    ByteSeq seq;
    for (size_t k = 0; k < a.size(); ++k) seq.emplace_back(uint8_t(a[k]), uint8_t(b[k]));
    out.push_back(std::move(seq));
  }
}

}  // namespace

// Text -> rules of Nodes -> Grammar::program_.
class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::string_view text) : s_(text) {}

  Grammar run() {
    skip_space();
    if (i_ == s_.size()) fail(i_, "the grammar is empty: it needs at least the rule 'root ::= ...'");
    while (i_ < s_.size()) {
      const size_t at = i_;
      const std::string n = name("a rule name");
      skip_space();
      if (s_.substr(i_, 3) != "::=") fail(i_, "expected '::=' after the rule name '" + n + "'");
      i_ += 3;
      skip_space();
      const int r = rule(n, at);
      if (bodies_[size_t(r)]) fail(at, "rule '" + n + "' is defined twice (first at " + where(defined_at_[size_t(r)]) + ")");
      defined_at_[size_t(r)] = at;
      bodies_[size_t(r)] = alternatives(0);
      if (i_ < s_.size() && !at_rule_start()) fail(i_, unexpected());
    }
    for (size_t r = 0; r < names_.size(); ++r)
      if (!bodies_[r]) fail(used_at_[r], "rule '" + names_[r] + "' is not defined");
    const auto root = std::find(names_.begin(), names_.end(), "root");
    if (root == names_.end()) fail(std::string_view::npos, "no rule named 'root' (the grammar starts at root)");
    return compile(size_t(root - names_.begin()));
  }

 private:
  // ---------------------------------------------------------------- errors
  // "line L, column C" (1-based, columns in characters) of byte offset `at`.
  std::string where(size_t at) const {
    size_t line = 1, column = 1;
    for (size_t k = 0; k < at && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        column = 1;
      } else if ((uint8_t(s_[k]) & 0xC0) != 0x80) {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  }
  [[noreturn]] void fail(size_t at, const std::string& msg) const {
    throw Error(at == std::string_view::npos ? "grammar: " + msg : "grammar: " + where(at) + ": " + msg);
  }
  // What is at the current position, for messages.
  std::string found() const {
    if (i_ >= s_.size()) return "the end of the grammar";
    const size_t n = std::max<size_t>(1, utf8_length(uint8_t(s_[i_])));
    return "'" + std::string(s_.substr(i_, n)) + "'";
  }
  std::string unexpected() const { return "unexpected " + found(); }
  static size_t utf8_length(uint8_t c) { return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0; }

  // ---------------------------------------------------------------- lexing
  static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }
  // Spaces, tabs, newlines and # comments.
  void skip_space() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i_;
      } else if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }
  // A rule name followed by '::=' starts here: the current rule has ended.
  bool at_rule_start() const {
    size_t k = i_;
    while (k < s_.size() && word_char(s_[k])) ++k;
    if (k == i_) return false;
    while (k < s_.size() && (s_[k] == ' ' || s_[k] == '\t' || s_[k] == '\r' || s_[k] == '\n')) ++k;
    return s_.substr(k, 3) == "::=";
  }
  std::string name(const char* what) {
    const size_t from = i_;
    while (i_ < s_.size() && word_char(s_[i_])) ++i_;
    if (i_ == from) fail(i_, "expected " + std::string(what) + " (letters, digits, '-', '_'), found " + found());
    return std::string(s_.substr(from, i_ - from));
  }
  int rule(const std::string& n, size_t at) {
    const auto it = std::find(names_.begin(), names_.end(), n);
    if (it != names_.end()) return int(it - names_.begin());
    names_.push_back(n);
    bodies_.emplace_back();
    defined_at_.push_back(0);
    used_at_.push_back(at);
    return int(names_.size() - 1);
  }

  // One character of the grammar's own text, decoded from UTF-8.
  uint32_t text_char() {
    const uint8_t c = uint8_t(s_[i_]);
    const size_t n = utf8_length(c);
    if (n == 0 || i_ + n > s_.size()) fail(i_, "invalid UTF-8 in the grammar text");
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; ++k) {
      const uint8_t d = uint8_t(s_[i_ + k]);
      if ((d & 0xC0) != 0x80) fail(i_, "invalid UTF-8 in the grammar text");
      cp = cp << 6 | (d & 0x3F);
    }
    const uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail(i_, "invalid UTF-8 in the grammar text");
    i_ += n;
    return cp;
  }
  // A character of a literal or class, opened at `open` (`what` names it): an escape or
  // a character of the text.
  uint32_t literal_char(size_t open, const char* what) {
    if (i_ >= s_.size() || s_[i_] == '\n' || s_[i_] == '\r')
      fail(open, std::string(what) + " is not closed on its line (write \\n for a newline)");
    if (s_[i_] != '\\') return text_char();
    const size_t at = i_++;
    if (i_ >= s_.size()) fail(at, "a lone backslash at the end of the grammar");
    const char e = s_[i_++];
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': return uint8_t(e);
      case 'x': return hex(at, 2);
      case 'u': return hex(at, 4);
      case 'U': return hex(at, 8);
      default: break;
    }
    fail(at, "unknown escape '\\" + std::string(s_.substr(at + 1, std::max<size_t>(1, utf8_length(uint8_t(e))))) +
                 "' (use \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\^ \\xHH \\uHHHH \\UHHHHHHHH)");
  }
  uint32_t hex(size_t at, int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const int d = i_ < s_.size() ? hex_value(s_[i_]) : -1;
      if (d < 0) fail(at, "escape '\\" + std::string(1, s_[at + 1]) + "' needs " + std::to_string(digits) + " hexadecimal digits");
      v = v << 4 | uint32_t(d);
      ++i_;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
      fail(at, "escape '" + std::string(s_.substr(at, i_ - at)) + "' is not a code point UTF-8 can encode");
    return v;
  }
  int number() {
    const size_t from = i_;
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + (s_[i_++] - '0');
      if (v > kMaxRepeat) fail(from, "repetition count above " + std::to_string(kMaxRepeat));
    }
    if (i_ == from) fail(i_, "expected a number in '{m,n}'");
    return int(v);
  }

  // ---------------------------------------------------------------- parsing
  Node alternatives(int depth) {
    Node alt(Node::Kind::Alt);
    alt.items.push_back(sequence(depth));
    while (i_ < s_.size() && s_[i_] == '|') {
      ++i_;
      skip_space();
      alt.items.push_back(sequence(depth));
    }
    return alt.items.size() == 1 ? std::move(alt.items[0]) : alt;
  }
  Node sequence(int depth) {
    Node seq(Node::Kind::Seq);
    while (i_ < s_.size() && s_[i_] != '|' && s_[i_] != ')' && !at_rule_start()) {
      Node item = primary(depth);
      skip_space();
      while (i_ < s_.size() && (s_[i_] == '*' || s_[i_] == '+' || s_[i_] == '?' || s_[i_] == '{')) {
        item = repeat(std::move(item));
        skip_space();
      }
      seq.items.push_back(std::move(item));
    }
    return seq.items.size() == 1 ? std::move(seq.items[0]) : seq;
  }
  Node repeat(Node item) {
    Node r(Node::Kind::Repeat);
    const char op = s_[i_];
    const size_t at = i_++;
    if (op == '*') {
      r.min = 0;
    } else if (op == '+') {
      r.min = 1;
    } else if (op == '?') {
      r.max = 1;
    } else {
      skip_space();
      r.min = i_ < s_.size() && s_[i_] == ',' ? 0 : number();
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip_space();
        if (i_ < s_.size() && s_[i_] != '}') r.max = number();
      } else {
        r.max = r.min;
      }
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '}') fail(i_, "expected '}' to close the repetition opened at " + where(at));
      ++i_;
      if (r.max >= 0 && r.max < r.min) fail(at, "repetition {" + std::to_string(r.min) + "," + std::to_string(r.max) + "} has its maximum below its minimum");
    }
    r.items.push_back(std::move(item));
    return r;
  }
  Node primary(int depth) {
    const char c = s_[i_];
    if (c == '"') {
      const size_t at = i_++;
      Node lit(Node::Kind::Literal);
      while (i_ >= s_.size() || s_[i_] != '"') append_utf8(lit.bytes, literal_char(at, "the literal"));
      ++i_;
      return lit;
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++i_;
      Node any(Node::Kind::Class);
      any.ranges = normalise({{0, 0x10FFFF}}, false);
      return any;
    }
    if (c == '(') {
      const size_t at = i_++;
      if (depth >= kMaxNesting) fail(at, "parentheses nested deeper than " + std::to_string(kMaxNesting));
      skip_space();
      Node inner = alternatives(depth + 1);
      if (i_ >= s_.size() || s_[i_] != ')') fail(at, "'(' is not closed");
      ++i_;
      return inner;
    }
    if (word_char(c)) {
      const size_t at = i_;
      Node ref(Node::Kind::Ref);
      ref.rule = rule(name("a rule name"), at);
      return ref;
    }
    fail(i_, unexpected());
  }
  Node char_class() {
    const size_t at = i_++;
    const bool negate = i_ < s_.size() && s_[i_] == '^';
    if (negate) ++i_;
    Ranges r;
    while (i_ >= s_.size() || s_[i_] != ']') {
      const uint32_t lo = literal_char(at, "the character class");
      uint32_t hi = lo;
      if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
        const size_t dash = i_++;
        hi = literal_char(at, "the character class");
        if (hi < lo) fail(dash, "range end below its start in a character class");
      }
      r.emplace_back(lo, hi);
    }
    ++i_;
    if (r.empty()) fail(at, "empty character class");
    Node cls(Node::Kind::Class);
    cls.ranges = normalise(std::move(r), negate);
    if (cls.ranges.empty()) fail(at, "the character class matches no character");
    return cls;
  }

  // ---------------------------------------------------------------- compiling
  int32_t emit(Grammar::Inst in) {
    if (g_.program_.size() >= kMaxProgram)
      fail(std::string_view::npos, "too large: more than " + std::to_string(kMaxProgram) +
                                       " instructions once repetitions are expanded (lower the {m,n} counts)");
    g_.program_.push_back(in);
    return int32_t(g_.program_.size() - 1);
  }
  int32_t bytes(const Grammar::ByteSet& set, int32_t next) {
    auto [it, added] = set_ids_.try_emplace(set, int32_t(g_.sets_.size()));
    if (added) g_.sets_.push_back(set);
    return emit({Grammar::Inst::Op::Bytes, next, it->second});
  }
  static Grammar::ByteSet range_set(uint8_t lo, uint8_t hi) {
    Grammar::ByteSet s{};
    for (unsigned b = lo; b <= hi; ++b) s[b >> 6] |= uint64_t(1) << (b & 63);
    return s;
  }
  // Any one of the alternatives starting at `starts` (not empty).
  int32_t either(const std::vector<int32_t>& starts) {
    int32_t pc = starts.back();
    for (size_t k = starts.size() - 1; k-- > 0;) pc = emit({Grammar::Inst::Op::Split, starts[k], pc});
    return pc;
  }
  // Compiles `n` to run before `next`; returns its first instruction (`next` when empty).
  int32_t compile(const Node& n, int32_t next) {
    using Op = Grammar::Inst::Op;
    switch (n.kind) {
      case Node::Kind::Literal:
        for (size_t k = n.bytes.size(); k-- > 0;) next = bytes(range_set(uint8_t(n.bytes[k]), uint8_t(n.bytes[k])), next);
        return next;
      case Node::Kind::Class: {
        std::vector<ByteSeq> seqs;
        for (const auto& [lo, hi] : n.ranges) utf8_sequences(lo, hi, seqs);
        Grammar::ByteSet single{};
        bool any_single = false;
        std::vector<int32_t> starts;
        for (const ByteSeq& seq : seqs) {
          if (seq.size() == 1) {
            const auto s = range_set(seq[0].first, seq[0].second);
            for (int w = 0; w < 4; ++w) single[w] |= s[w];
            any_single = true;
            continue;
          }
          int32_t pc = next;
          for (size_t k = seq.size(); k-- > 0;) pc = bytes(range_set(seq[k].first, seq[k].second), pc);
          starts.push_back(pc);
        }
        if (any_single) starts.insert(starts.begin(), bytes(single, next));
        return either(starts);
      }
      case Node::Kind::Ref: {
        const int32_t pc = emit({Op::Call, next, -1});
        calls_.emplace_back(pc, n.rule);
        return pc;
      }
      case Node::Kind::Seq:
        for (size_t k = n.items.size(); k-- > 0;) next = compile(n.items[k], next);
        return next;
      case Node::Kind::Alt: {
        std::vector<int32_t> starts;
        for (const Node& item : n.items) starts.push_back(compile(item, next));
        return either(starts);
      }
      case Node::Kind::Repeat: {
        const Node& body = n.items[0];
        int32_t tail = next;
        if (n.max < 0) {  // a loop: Split(body -> back here, next)
          const int32_t loop = emit({Op::Split, -1, next});
          g_.program_[size_t(loop)].next = compile(body, loop);
          tail = loop;
        } else {  // max - min optional copies, each leading to the next one or out
          for (int k = n.min; k < n.max; ++k) tail = emit({Op::Split, compile(body, tail), next});
        }
        for (int k = 0; k < n.min; ++k) tail = compile(body, tail);
        return tail;
      }
    }
    return next;
  }

  Grammar compile(size_t root) {
    using Op = Grammar::Inst::Op;
    std::vector<int32_t> start(names_.size());
    for (size_t r = 0; r < names_.size(); ++r) start[r] = compile(*bodies_[r], emit({Op::Return}));
    for (const auto& [pc, r] : calls_) g_.program_[size_t(pc)].arg = start[size_t(r)];
    g_.start_ = start[root];
    check_rules(start);
    byte_classes();
    return std::move(g_);
  }

  // Two faults that would leave the automaton unable to work: a rule that can reach a
  // call of itself before matching a byte (its stack would grow without end), and a rule
  // that can never complete (every way through it uses itself again). Both are refused,
  // naming the rules.
  void check_rules(const std::vector<int32_t>& start) {
    using Op = Grammar::Inst::Op;
    const auto& prog = g_.program_;
    std::map<int32_t, size_t> rule_at;
    for (size_t r = 0; r < start.size(); ++r) rule_at[start[r]] = r;
    // Walks rule r from its start; at a call of rule q, on_call(q) says whether to go on
    // past it; bytes are passed over when `through_bytes`. True when the walk can return.
    auto explore = [&](size_t r, bool through_bytes, auto&& on_call) {
      std::vector<char> seen(prog.size(), 0);
      std::vector<int32_t> todo{start[r]};
      bool returns = false;
      while (!todo.empty()) {
        const int32_t pc = todo.back();
        todo.pop_back();
        if (seen[size_t(pc)]) continue;
        seen[size_t(pc)] = 1;
        const auto& in = prog[size_t(pc)];
        switch (in.op) {
          case Op::Bytes: if (through_bytes) todo.push_back(in.next); break;
          case Op::Jump: todo.push_back(in.next); break;
          case Op::Split: todo.push_back(in.next); todo.push_back(in.arg); break;
          case Op::Call: if (on_call(rule_at[in.arg])) todo.push_back(in.next); break;
          case Op::Return: returns = true; break;
        }
      }
      return returns;
    };
    // Fixed points: the rules that can match the empty string, and those that can match
    // any finite string at all.
    auto fixed_point = [&](bool through_bytes) {
      std::vector<char> can(start.size(), 0);
      for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < start.size(); ++r)
          if (!can[r] && explore(r, through_bytes, [&](size_t q) { return can[q] != 0; })) can[r] = changed = true;
      }
      return can;
    };
    const std::vector<char> nullable = fixed_point(false);
    std::vector<std::vector<size_t>> left(start.size());  // the calls each rule can make before a byte
    for (size_t r = 0; r < start.size(); ++r)
      explore(r, false, [&](size_t q) {
        left[r].push_back(q);
        return nullable[q] != 0;
      });
    std::vector<int> color(start.size(), 0);  // 0 new, 1 on the path, 2 done
    std::vector<size_t> path;
    auto dfs = [&](size_t r, auto&& self) -> void {
      color[r] = 1;
      path.push_back(r);
      for (const size_t q : left[r]) {
        if (color[q] == 1) {
          std::string cycle;
          for (auto it = std::find(path.begin(), path.end(), q); it != path.end(); ++it) cycle += names_[*it] + " -> ";
          fail(defined_at_[q], "rule '" + names_[q] + "' is left-recursive (" + cycle + names_[q] +
                                   "): a rule must match at least one character before it is used again");
        }
        if (color[q] == 0) self(q, self);
      }
      path.pop_back();
      color[r] = 2;
    };
    for (size_t r = 0; r < start.size(); ++r)
      if (color[r] == 0) dfs(r, dfs);
    const std::vector<char> completes = fixed_point(true);
    for (size_t r = 0; r < start.size(); ++r)
      if (!completes[r])
        fail(defined_at_[r], "rule '" + names_[r] + "' can never complete: every way through it uses a rule that never ends");
  }

  // Partitions the bytes so that every byte set is a union of classes.
  void byte_classes() {
    std::array<uint16_t, 256> cls{};
    int count = 1;
    for (const auto& set : g_.sets_) {
      std::map<std::pair<uint16_t, bool>, uint16_t> renamed;
      for (int b = 0; b < 256; ++b) {
        const auto key = std::make_pair(cls[b], Grammar::contains(set, uint8_t(b)));
        cls[b] = renamed.try_emplace(key, uint16_t(renamed.size())).first->second;
      }
      count = int(renamed.size());
    }
    for (int b = 0; b < 256; ++b) g_.byte_class_[b] = uint8_t(cls[b]);
    g_.classes_ = count;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::vector<std::string> names_;
  std::vector<std::optional<Node>> bodies_;
  std::vector<size_t> defined_at_, used_at_;
  Grammar g_;
  std::map<Grammar::ByteSet, int32_t> set_ids_;
  std::vector<std::pair<int32_t, int>> calls_;  // (Call instruction, rule) to patch
};

Grammar Grammar::parse(std::string_view text) { return GrammarCompiler(text).run(); }

// ---------------------------------------------------------------------------- automaton

size_t GrammarAutomaton::VectorHash::operator()(const std::vector<Thread>& v) const {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ v.size();
  for (const Thread t : v) h = (h ^ t) * 0xff51afd7ed558ccdull, h ^= h >> 29;
  return size_t(h);
}

GrammarAutomaton::GrammarAutomaton(Grammar grammar) : grammar_(std::move(grammar)), classes_(grammar_.classes()) {
  stacks_.emplace_back(-1, -1);
  pending_.clear();
  pending_accept_ = false;
  seen_.clear();
  closure(grammar_.start(), 0);
  start_ = pending_.empty() && !pending_accept_ ? kDead : intern();
}

int32_t GrammarAutomaton::push(int32_t return_pc, int32_t stack) {
  const uint64_t key = uint64_t(uint32_t(return_pc)) << 32 | uint32_t(stack);
  const auto [it, added] = stack_ids_.try_emplace(key, int32_t(stacks_.size()));
  if (added) {
    if (stacks_.size() >= kMaxStacks) throw Error("grammar: too many nested rule calls alive at once");
    stacks_.emplace_back(return_pc, stack);
    bytes_ += sizeof(stacks_[0]) + 32;  // the entry and its hash-map node
  }
  return it->second;
}

void GrammarAutomaton::closure(int32_t pc, int32_t stack) {
  using Op = Grammar::Inst::Op;
  const auto& prog = grammar_.program();
  work_.emplace_back(pc, stack);
  while (!work_.empty()) {
    auto [p, st] = work_.back();
    work_.pop_back();
    for (;;) {
      if (!seen_.insert(uint64_t(uint32_t(p)) << 32 | uint32_t(st)).second) break;
      const auto& in = prog[size_t(p)];
      if (in.op == Op::Bytes) {
        pending_.push_back(uint64_t(uint32_t(p)) << 32 | uint32_t(st));
        break;
      }
      if (in.op == Op::Jump) {
        p = in.next;
      } else if (in.op == Op::Split) {
        work_.emplace_back(in.arg, st);
        p = in.next;
      } else if (in.op == Op::Call) {
        st = push(in.next, st);
        p = in.arg;
      } else if (st == 0) {  // Return from root: a complete match
        pending_accept_ = true;
        break;
      } else {
        p = stacks_[size_t(st)].first;
        st = stacks_[size_t(st)].second;
      }
    }
  }
  if (pending_.size() > kMaxThreads)
    throw Error("grammar: more than " + std::to_string(kMaxThreads) + " parses alive at once (the grammar is too ambiguous)");
}

GrammarAutomaton::StateId GrammarAutomaton::intern() {
  std::sort(pending_.begin(), pending_.end());
  pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
  auto& map = by_threads_[pending_accept_ ? 1 : 0];
  const auto it = map.find(pending_);
  if (it != map.end()) return it->second;
  const StateId id = StateId(states_.size());
  states_.push_back({pending_, pending_accept_});
  transitions_.resize(transitions_.size() + size_t(classes_), kUnknown);
  map.emplace(pending_, id);
  bytes_ += 2 * (sizeof(State) + pending_.size() * sizeof(Thread) + 32) + size_t(classes_) * sizeof(StateId);
  return id;
}

GrammarAutomaton::StateId GrammarAutomaton::compute(StateId s, uint8_t byte) {
  const auto& prog = grammar_.program();
  const auto& sets = grammar_.byte_sets();
  pending_.clear();
  pending_accept_ = false;
  seen_.clear();
  for (const Thread t : states_[size_t(s)].threads) {
    const auto& in = prog[size_t(t >> 32)];
    if (Grammar::contains(sets[size_t(in.arg)], byte)) closure(in.next, int32_t(uint32_t(t)));
  }
  const StateId to = pending_.empty() && !pending_accept_ ? kDead : intern();
  transitions_[size_t(s) * size_t(classes_) + grammar_.byte_class()[byte]] = to;
  return to;
}

GrammarAutomaton::StateId GrammarAutomaton::compact(StateId keep) {
  if (keep == kDead) return kDead;
  // keep's threads with their stacks spelled out (innermost return first).
  std::vector<std::pair<int32_t, std::vector<int32_t>>> threads;
  for (const Thread t : states_[size_t(keep)].threads) {
    std::vector<int32_t> returns;
    for (int32_t st = int32_t(uint32_t(t)); st != 0; st = stacks_[size_t(st)].second) returns.push_back(stacks_[size_t(st)].first);
    threads.emplace_back(int32_t(t >> 32), std::move(returns));
  }
  const bool accepting = states_[size_t(keep)].accepting;
  states_.clear();
  transitions_.clear();
  by_threads_[0].clear();
  by_threads_[1].clear();
  stacks_.assign(1, {-1, -1});
  stack_ids_.clear();
  bytes_ = 0;
  // The start state first (ids 0 on), then keep.
  pending_.clear();
  pending_accept_ = false;
  seen_.clear();
  closure(grammar_.start(), 0);
  start_ = pending_.empty() && !pending_accept_ ? kDead : intern();
  pending_.clear();
  for (const auto& [pc, returns] : threads) {
    int32_t st = 0;
    for (size_t k = returns.size(); k-- > 0;) st = push(returns[k], st);
    pending_.push_back(uint64_t(uint32_t(pc)) << 32 | uint32_t(st));
  }
  pending_accept_ = accepting;
  return intern();
}

}  // namespace rwkv
