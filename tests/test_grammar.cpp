// Grammars (docs/grammar.md): the parser's messages, which strings a grammar accepts
// (tables written by hand, and regular grammars against std::regex), the token masks
// against hand-worked cases and a brute-force walk of every token, and generation on
// the fixture models, whose unconstrained output is noise: the output always matches.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/runner.h"
#include "test_support.h"
#include "text/generate.h"
#include "text/grammar_matcher.h"

using namespace rwkv;
using Catch::Matchers::Contains;

namespace {

bool matches(const std::string& grammar, std::string_view text) {
  GrammarAutomaton a(Grammar::parse(grammar));
  return a.accepting(a.walk(a.start(), text));
}

// The message of the error parsing `grammar` throws ("" when it parses).
std::string parse_error(const std::string& grammar) {
  try {
    Grammar::parse(grammar);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A vocabulary file with ids 1..256 for the single bytes (as in the World vocabulary)
// and then `extra`, every token written as a Python bytes literal.
std::string vocab_text(const std::vector<std::string>& extra) {
  std::string out;
  auto line = [&](int id, const std::string& b) {
    out += std::to_string(id) + " b'";
    for (const char c : b) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[uint8_t(c) >> 4];
      out += hex[uint8_t(c) & 15];
    }
    out += "' " + std::to_string(b.size()) + "\n";
  };
  for (int b = 0; b < 256; ++b) line(b + 1, std::string(1, char(b)));
  for (size_t k = 0; k < extra.size(); ++k) line(int(257 + k), extra[k]);
  return out;
}

int32_t byte_id(char c) { return int32_t(uint8_t(c)) + 1; }  // the single-byte token of the vocabularies above

// The ids whose bit is set.
std::vector<int32_t> ids(const std::vector<uint64_t>& bits) {
  std::vector<int32_t> out;
  for (size_t t = 0; t < bits.size() * 64; ++t)
    if ((bits[t >> 6] >> (t & 63)) & 1) out.push_back(int32_t(t));
  return out;
}

// What the mask must be after `text`: every token whose bytes keep the text a prefix of
// a match (walked byte by byte through a fresh automaton, no trie), and the end token
// where the text is complete.
std::vector<int32_t> brute_force(const std::string& grammar, const Tokenizer& tok, size_t vocab, int32_t end,
                                 const std::string& text) {
  GrammarAutomaton a(Grammar::parse(grammar));
  const auto s = a.walk(a.start(), text);
  std::vector<int32_t> out;
  for (size_t t = 0; t < vocab; ++t) {
    if (int32_t(t) == end) {
      if (a.accepting(s)) out.push_back(int32_t(t));
      continue;
    }
    if (t >= tok.vocab_size() || tok.token_bytes(int32_t(t)).empty()) continue;
    if (a.walk(s, tok.token_bytes(int32_t(t))) != GrammarAutomaton::kDead) out.push_back(int32_t(t));
  }
  return out;
}

// An independent JSON check (RFC 8259): true when `s` is exactly one JSON value with
// optional whitespace around it.
class JsonCheck {
 public:
  static bool valid(std::string_view s) {
    JsonCheck j{s};
    j.ws();
    if (!j.value(0)) return false;
    j.ws();
    return j.i_ == s.size();
  }

 private:
  explicit JsonCheck(std::string_view s) : s_(s) {}
  bool eat(char c) { return i_ < s_.size() && s_[i_] == c ? (++i_, true) : false; }
  bool eat(std::string_view w) { return s_.substr(i_, w.size()) == w ? (i_ += w.size(), true) : false; }
  void ws() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_; }
  bool digits() {
    const size_t from = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > from;
  }
  bool value(int depth) {
    if (depth > 100 || i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (eat(close)) return true;
      do {
        ws();
        if (c == '{') {
          if (!string()) return false;
          ws();
          if (!eat(':')) return false;
          ws();
        }
        if (!value(depth + 1)) return false;
        ws();
      } while (eat(','));
      return eat(close);
    }
    if (c == '"') return string();
    if (eat("true") || eat("false") || eat("null")) return true;
    eat('-');
    if (!eat('0') && !digits()) return false;
    if (eat('.') && !digits()) return false;
    if ((eat('e') || eat('E')) && (eat('+') || eat('-') || true) && !digits()) return false;
    return true;
  }
  bool string() {
    if (!eat('"')) return false;
    while (i_ < s_.size() && s_[i_] != '"') {
      const uint8_t c = uint8_t(s_[i_++]);
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k)
          if (i_ >= s_.size() || !std::isxdigit(uint8_t(s_[i_++]))) return false;
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return eat('"');
  }
  std::string_view s_;
  size_t i_ = 0;
};

// A JSON grammar with bounded sizes, so that a random model reaches the end: strings of
// at most 8 characters, at most 3 members or elements, nesting at most 2 deep.
const char* kSmallJson = R"(
root    ::= object
object  ::= "{" ( member ( ", " member ){0,2} )? "}"
member  ::= string ": " value
value   ::= string | number | "true" | "false" | "null" | object1 | array1
object1 ::= "{" ( string ": " leaf ( ", " string ": " leaf ){0,2} )? "}"
array1  ::= "[" ( leaf ( ", " leaf ){0,2} )? "]"
leaf    ::= string | number | "true" | "false" | "null"
string  ::= "\"" ( [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) ){0,8} "\""
number  ::= "-"? ( "0" | [1-9] [0-9]{0,5} ) ( "." [0-9]{1,3} )? ( [eE] [-+]? [0-9]{1,2} )?
)";

// General JSON, as in docs/grammar.md.
const char* kJson = R"(
root   ::= ws value ws
value  ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
member ::= string ws ":" ws value
array  ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws     ::= [ \t\n\r]*
)";

std::unique_ptr<Model> load_fixture(const std::string& name) {
  auto s = read_file(fixture(name));
  if (!s) return nullptr;
  Bytes b = Bytes::allocate(s->size());
  std::memcpy(b.data.get(), s->data(), s->size());
  return Model::load(std::move(b));
}

}  // namespace

// ---------------------------------------------------------------------------- parsing

TEST_CASE("grammar: the notation's elements parse", "[grammar]") {
  const char* good[] = {
      "root ::= \"a\"",
      "root ::= \"\"",
      "root ::=",
      "root ::= a | b\na ::= \"a\"\nb ::= \"b\"",
      "root ::= ( \"a\" | \"b\" )* [c-e]+ [^\\n]? \"x\"{2} \"y\"{1,} \"z\"{,3} \"w\"{0,2} .",
      "root ::= \"\\n\\r\\t\\\\\\\"\\x41\\u00e9\\U0001F600\"",
      "root ::= [\\[\\]\\-\\^a-] [-a]",
      "# a comment\nroot ::= x # another\n  | y  # alternatives on later lines\nx ::= \"x\"\ny ::= \"y\"",
      "root ::=\n  \"a\"\n  \"b\"\nnext-rule_2 ::= \"c\"",
      "root ::= \"é中👍\" [é-ü] [^中]",
  };
  for (const char* g : good) {
    INFO(g);
    CHECK(parse_error(g).empty());
  }
}

TEST_CASE("grammar: errors name the line, the column and the fault", "[grammar]") {
  struct Case {
    std::string grammar, message;
  };
  const Case cases[] = {
      {"", "grammar: line 1, column 1: the grammar is empty: it needs at least the rule 'root ::= ...'"},
      {"  # only a comment\n", "grammar: line 2, column 1: the grammar is empty: it needs at least the rule 'root ::= ...'"},
      {"root = \"a\"", "grammar: line 1, column 6: expected '::=' after the rule name 'root'"},
      {"\"a\"", "grammar: line 1, column 1: expected a rule name (letters, digits, '-', '_'), found '\"'"},
      {"root ::= \"abc", "grammar: line 1, column 10: the literal is not closed on its line (write \\n for a newline)"},
      {"root ::= \"ab\nc\"", "grammar: line 1, column 10: the literal is not closed on its line (write \\n for a newline)"},
      {"root ::= [a-", "grammar: line 1, column 10: the character class is not closed on its line (write \\n for a newline)"},
      {"root ::= foo", "grammar: line 1, column 10: rule 'foo' is not defined"},
      {"root ::= \"é\" foo", "grammar: line 1, column 14: rule 'foo' is not defined"},
      {"root ::= \"a\"\nroot ::= \"b\"", "grammar: line 2, column 1: rule 'root' is defined twice (first at line 1, column 1)"},
      {"start ::= \"a\"", "grammar: no rule named 'root' (the grammar starts at root)"},
      {"root ::= root \"a\" | \"b\"",
       "grammar: line 1, column 1: rule 'root' is left-recursive (root -> root): a rule must match at least one character before it is used again"},
      {"root ::= a\na ::= b? c\nb ::= \"b\"\nc ::= \"c\" | a \"x\"",
       "grammar: line 2, column 1: rule 'a' is left-recursive (a -> c -> a): a rule must match at least one character before it is used again"},
      {"root ::= \"a\" root", "grammar: line 1, column 1: rule 'root' can never complete: every way through it uses a rule that never ends"},
      {"root ::= \"\\q\"",
       "grammar: line 1, column 11: unknown escape '\\q' (use \\n \\r \\t \\\\ \\\" \\[ \\] \\- \\^ \\xHH \\uHHHH \\UHHHHHHHH)"},
      {"root ::= \"\\x4\"", "grammar: line 1, column 11: escape '\\x' needs 2 hexadecimal digits"},
      {"root ::= \"\\uD800\"", "grammar: line 1, column 11: escape '\\uD800' is not a code point UTF-8 can encode"},
      {"root ::= \"\\U00110000\"", "grammar: line 1, column 11: escape '\\U00110000' is not a code point UTF-8 can encode"},
      {"root ::= [z-a]", "grammar: line 1, column 12: range end below its start in a character class"},
      {"root ::= []", "grammar: line 1, column 10: empty character class"},
      {"root ::= [^\\x00-\\U0010FFFF]", "grammar: line 1, column 10: the character class matches no character"},
      {"root ::= \"a\"{3,2}", "grammar: line 1, column 13: repetition {3,2} has its maximum below its minimum"},
      {"root ::= \"a\"{2", "grammar: line 1, column 15: expected '}' to close the repetition opened at line 1, column 13"},
      {"root ::= \"a\"{1000000}", "grammar: line 1, column 14: repetition count above 100000"},
      {"root ::= (\"a\"", "grammar: line 1, column 10: '(' is not closed"},
      {"root ::= \"a\" )", "grammar: line 1, column 14: unexpected ')'"},
      {"root ::= \"a\" | ]", "grammar: line 1, column 16: unexpected ']'"},
      {"root ::= \"\xff\"", "grammar: line 1, column 11: invalid UTF-8 in the grammar text"},
      {"root ::= ( \"0123456789\"{1000} ){1000}",
       "grammar: too large: more than 1048576 instructions once repetitions are expanded (lower the {m,n} counts)"},
      {"root ::= " + std::string(201, '(') + "\"a\"" + std::string(201, ')'), "grammar: line 1, column 210: parentheses nested deeper than 200"},
  };
  for (const auto& c : cases) {
    INFO(c.grammar);
    CHECK(parse_error(c.grammar) == c.message);
  }
}

// ---------------------------------------------------------------------------- acceptance

TEST_CASE("grammar: which strings match, element by element", "[grammar]") {
  struct Case {
    const char* grammar;
    std::vector<std::string> yes, no;
  };
  const Case cases[] = {
      {"root ::= \"abc\"", {"abc"}, {"", "ab", "abcd", "abd"}},
      {"root ::= \"\"", {""}, {"a"}},
      {"root ::= \"a\" | \"bc\" | \"\"", {"a", "bc", ""}, {"b", "abc"}},
      {"root ::= \"\\n\\t\\\\\\\"\\x41\\u00e9\\U0001F600\"", {"\n\t\\\"A\xc3\xa9\xf0\x9f\x98\x80"}, {"\n\t\\\"A"}},
      {"root ::= [a-cx]", {"a", "b", "c", "x"}, {"d", "w", "", "ab"}},
      {"root ::= [^a-c]", {"d", "\n", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80"}, {"a", "c", "", "de"}},
      {"root ::= [\\[\\]\\-\\^] [-a]", {"[-", "]a", "--", "^-"}, {"a-", "[b"}},
      {"root ::= .", {"a", "\x7f", "\xc2\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf"},
       {"", "\x80", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "ab"}},
      {"root ::= [\\u0100-\\u07ff]", {"\xc4\x80", "\xdf\xbf"}, {"\xc3\xbf", "\xe0\xa0\x80"}},
      {"root ::= [\\U00010000-\\U0010ffff]", {"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}, {"\xef\xbf\xbf"}},
      {"root ::= [一-龥]+", {"中", "中文"}, {"", "a", "中a"}},
      {"root ::= \"a\"?", {"", "a"}, {"aa"}},
      {"root ::= \"a\"*", {"", "a", "aaaa"}, {"b", "aab"}},
      {"root ::= \"a\"+", {"a", "aaa"}, {""}},
      {"root ::= \"a\"{3}", {"aaa"}, {"aa", "aaaa"}},
      {"root ::= \"a\"{2,}", {"aa", "aaaaa"}, {"a"}},
      {"root ::= \"a\"{1,3}", {"a", "aa", "aaa"}, {"", "aaaa"}},
      {"root ::= \"a\"{,2}", {"", "a", "aa"}, {"aaa"}},
      {"root ::= \"a\"{0}", {""}, {"a"}},
      {"root ::= (\"ab\" | \"c\"){2}", {"abab", "abc", "cc", "cab"}, {"ab", "abcab"}},
      {"root ::= (\"a\"?)*", {"", "a", "aaa"}, {"b"}},
      {"root ::= \"(\" root \")\" root | \"\"", {"", "()", "(())()", "((()))"}, {"(", ")(", "(()"}},
      {"root ::= x \"-\" x\nx ::= [0-9]+ | \"n\"", {"1-2", "n-42", "007-n"}, {"1-", "-2", "n-n-n"}},
      {"root ::= a\na ::= b? c\nb ::= \"b\"\nc ::= \"c\" | \"(\" a \")\"", {"c", "bc", "(c)", "b(bc)"}, {"b", "(b)"}},
      {kJson,
       {"{}", " [ ] ", "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {}}", "\"\xe4\xb8\xad\"", "0", "-0.0E+1"},
       {"{", "{a: 1}", "[1,]", "01", "\"\x01\"", "\"\\q\"", "1.", "{\"a\" 1}"}},
  };
  for (const auto& c : cases) {
    INFO(c.grammar);
    for (const auto& s : c.yes) {
      INFO("should match: " << s);
      CHECK(matches(c.grammar, s));
    }
    for (const auto& s : c.no) {
      INFO("should not match: " << s);
      CHECK(!matches(c.grammar, s));
    }
  }
}

TEST_CASE("grammar: regular grammars agree with std::regex on random strings", "[grammar]") {
  struct Case {
    const char* grammar;
    const char* regex;
  };
  const Case cases[] = {
      {"root ::= (\"ab\" | \"a\")* \"b\"?", "(ab|a)*b?"},
      {"root ::= [a-c]{2,4} (\"x\" | [^a-c])?", "[a-c]{2,4}(x|[^a-c])?"},
      {"root ::= \"a\"{0,3} \"b\"+ | \"c\" root?", "c*a{0,3}b+|c+"},
      {"root ::= x x\nx ::= [ab]? \"c\"*", "([ab]?c*){2}"},
      {"root ::= ( [xy] \"a\"? ){1,3} \"b\"{2,}", "([xy]a?){1,3}b{2,}"},
  };
  std::mt19937 rng(1234);
  const std::string alphabet = "abcxy";
  for (const auto& c : cases) {
    INFO(c.grammar);
    GrammarAutomaton a(Grammar::parse(c.grammar));
    const std::regex re(c.regex);
    int agreed = 0, matched = 0;
    for (int k = 0; k < 3000; ++k) {
      std::string s(rng() % 9, ' ');
      for (char& ch : s) ch = alphabet[rng() % alphabet.size()];
      const bool want = std::regex_match(s, re);
      INFO("string: " << s);
      REQUIRE(a.accepting(a.walk(a.start(), s)) == want);
      ++agreed;
      matched += want;
    }
    CHECK(agreed == 3000);
    CHECK(matched > 10);  // the strings exercise the match side too
  }
}

TEST_CASE("grammar: a compacted automaton continues where it was", "[grammar]") {
  const char* g = "root ::= ( \"(\" root \")\" | [a-z] )*";
  GrammarAutomaton a(Grammar::parse(g)), fresh(Grammar::parse(g));
  const std::string prefix = "(((x)(";
  auto s = a.walk(a.start(), prefix);
  REQUIRE(s != GrammarAutomaton::kDead);
  const size_t before = a.states();
  s = a.compact(s);
  CHECK(a.states() < before);
  std::mt19937 rng(7);
  int accepted = 0;
  for (int k = 0; k < 2000; ++k) {
    std::string suffix(rng() % 12, ' ');
    for (char& c : suffix) c = "()xy"[rng() % 4];
    INFO("suffix " << suffix);
    const bool want = fresh.accepting(fresh.walk(fresh.start(), prefix + suffix));
    REQUIRE(a.accepting(a.walk(s, suffix)) == want);
    accepted += want;
  }
  CHECK(accepted > 10);
  CHECK(a.accepting(a.walk(s, "y)))")));
  CHECK(a.accepting(a.walk(a.start(), "(a)b")));
}

// ---------------------------------------------------------------------------- masks

TEST_CASE("grammar: masks across element boundaries", "[grammar]") {
  const std::vector<std::string> extra = {"{\"", "\":", "\"}", "a\"", "\"a\":1}", "ab", "1}"};
  const Tokenizer tok = Tokenizer::from_vocab_text(vocab_text(extra));
  const size_t V = tok.vocab_size();
  const std::string g = "root ::= \"{\" \"\\\"a\\\"\" \":\" [0-9]+ \"}\"";
  auto trie = std::make_shared<const TokenTrie>(tok, V, 0);
  GrammarMatcher m(Grammar::parse(g), trie);
  using V32 = std::vector<int32_t>;
  const int32_t open_quote = 257, quote_close = 259, a_quote = 260, all = 261, one_close = 263;
  CHECK(ids(m.allowed()) == V32{byte_id('{'), open_quote});
  m.accept(byte_id('{'));
  CHECK(ids(m.allowed()) == V32{byte_id('"'), all});  // `"a":1}` spans every element to the end
  m.accept(byte_id('"'));
  CHECK(ids(m.allowed()) == V32{byte_id('a'), a_quote});
  m.accept(a_quote);
  CHECK(ids(m.allowed()) == V32{byte_id(':')});
  m.accept(byte_id(':'));
  V32 digits;
  for (char c = '0'; c <= '9'; ++c) digits.push_back(byte_id(c));
  V32 digits_and_1close = digits;
  digits_and_1close.push_back(one_close);
  CHECK(ids(m.allowed()) == digits_and_1close);
  m.accept(byte_id('7'));
  V32 after_digit = digits;
  after_digit.push_back(byte_id('}'));
  after_digit.push_back(one_close);
  CHECK(ids(m.allowed()) == after_digit);
  CHECK(!m.can_end());
  CHECK_THROWS_WITH(m.accept(quote_close), "grammar: token 259 \"\\\"}\" is not allowed here");
  m.accept(byte_id('}'));
  CHECK(m.ended());
  CHECK(ids(m.allowed()) == V32{0});  // only the end of text
  m.accept(0);
  CHECK(ids(m.allowed()).empty());
}

TEST_CASE("grammar: masks inside UTF-8 characters", "[grammar]") {
  // 中 = E4 B8 AD, 文 = E6 96 87; tokens that end inside a character and one that
  // finishes 中 and starts 文.
  const std::vector<std::string> extra = {"\xe4\xb8", "\xad\xe6", "\x96\x87", "\xe4\xb8\xad", "\xe6\x96\x87"};
  const Tokenizer tok = Tokenizer::from_vocab_text(vocab_text(extra));
  auto trie = std::make_shared<const TokenTrie>(tok, tok.vocab_size(), 0);
  GrammarMatcher m(Grammar::parse("root ::= \"中文\""), trie);
  using V32 = std::vector<int32_t>;
  CHECK(ids(m.allowed()) == V32{0xE4 + 1, 257, 260});
  m.accept(257);
  CHECK(ids(m.allowed()) == V32{0xAD + 1, 258});
  m.accept(258);
  CHECK(ids(m.allowed()) == V32{0x96 + 1, 259});
  m.accept(259);
  CHECK(m.ended());

  // A class of characters: the partial token is allowed only where it can complete one.
  GrammarMatcher c(Grammar::parse("root ::= [一-龥]{2} \".\""), trie);
  CHECK(ids(c.allowed()) == brute_force("root ::= [一-龥]{2} \".\"", tok, tok.vocab_size(), 0, ""));
  c.accept(261);  // 文
  CHECK(ids(c.allowed()) == brute_force("root ::= [一-龥]{2} \".\"", tok, tok.vocab_size(), 0, "文"));
  c.accept(257);  // half of 中: any continuation byte completes a character of the class
  V32 continuation;
  for (int b = 0x80; b <= 0xBF; ++b) continuation.push_back(b + 1);
  CHECK(ids(c.allowed()) == continuation);  // not 258, which would start a third character
}

TEST_CASE("grammar: masks match a brute-force walk of every token", "[grammar]") {
  const std::vector<std::string> extra = {"{\"", "\":", "\"}", "a\"", "\": \"", "\\u00", "12", ".5", "e+", "tr", "ue",
                                          "null", "\xe4\xb8", "\xad\"", " \"", "],", "[[", "\xc3\xa9\""};
  const Tokenizer tok = Tokenizer::from_vocab_text(vocab_text(extra));
  const size_t V = tok.vocab_size() + 3;  // a model vocabulary larger than the tokenizer's: those ids are never allowed
  auto trie = std::make_shared<const TokenTrie>(tok, V, 0);
  const std::vector<std::string> texts = {"", "{", "{\"", "{\"a\\u00", "{\"a\": [1", "{\"a\": [12.5e+", "[[\"\xe4\xb8",
                                          "[tr", "[true, [[", "{\"\xc3\xa9\"", "\"x\""};
  GrammarMatcher m(Grammar::parse(kJson), trie);
  for (const auto& text : texts) {
    INFO("after " << text);
    m.reset();
    for (const int32_t t : tok.encode(text)) m.accept(t);
    const auto want = brute_force(kJson, tok, V, 0, text);
    CHECK(ids(m.allowed()) == want);
    CHECK(!want.empty());
  }
}

TEST_CASE("grammar: byte-level vocabulary, end of text only where the grammar may end", "[grammar]") {
  const Tokenizer tok = Tokenizer::byte_level();
  auto trie = std::make_shared<const TokenTrie>(tok, 256, 0);
  GrammarMatcher m(Grammar::parse("root ::= [a-z]+"), trie);
  std::vector<int32_t> letters;
  for (int c = 'a'; c <= 'z'; ++c) letters.push_back(c);
  CHECK(ids(m.allowed()) == letters);
  m.accept('q');
  CHECK(m.can_end());
  auto with_end = letters;
  with_end.insert(with_end.begin(), 0);
  CHECK(ids(m.allowed()) == with_end);
  m.accept(0);
  CHECK(m.ended());
  CHECK(ids(m.allowed()).empty());

  // Token 0 is end of text, never the byte 0: a grammar that wants NUL cannot get it.
  GrammarMatcher nul(Grammar::parse("root ::= \"\\x00\""), trie);
  CHECK(ids(nul.allowed()).empty());
  std::vector<float> logits(256, 0.0f);
  CHECK_THROWS_WITH(nul.mask(logits), Contains("no token of the vocabulary can continue the text here"));
  // Without an end token it is the byte.
  GrammarMatcher raw(Grammar::parse("root ::= \"\\x00\""), std::make_shared<const TokenTrie>(tok, 256, -1));
  CHECK(ids(raw.allowed()) == std::vector<int32_t>{0});
}

TEST_CASE("grammar: the World vocabulary against a brute-force walk", "[grammar][world]") {
  const auto text = read_file(std::string(reference_dir()) + "/vocab/rwkv_vocab_v20230424.txt");
  if (!text) {
    WARN("missing " << reference_dir() << "/vocab/rwkv_vocab_v20230424.txt: World vocabulary grammar test skipped");
    return;
  }
  const Tokenizer tok = Tokenizer::from_vocab_text(*text);
  const size_t V = 65536;
  auto trie = std::make_shared<const TokenTrie>(tok, V, 0);
  GrammarMatcher m(Grammar::parse(kJson), trie);
  for (const std::string prefix : {"", "{\"", "{\"na", "{\"name\": \"Fran\xc3", "{\"name\": \"中", "{\"a\": [1, 2.5",
                                   "{\"a\": {\"b\": tr", "[\"x\", {}, "}) {
    INFO("after " << prefix);
    m.reset();
    for (const int32_t t : tok.encode(prefix)) m.accept(t);
    const auto got = ids(m.allowed());
    CHECK(got == brute_force(kJson, tok, V, 0, prefix));
    CHECK(got.size() > 1);
  }
  // Inside a string almost every token may come.
  m.reset();
  for (const int32_t t : tok.encode("{\"key\": \"some text")) m.accept(t);
  CHECK(ids(m.allowed()).size() > 50000);
}

// ---------------------------------------------------------------------------- generation

namespace {

// One generation to its end on a fresh state.
struct Run {
  std::string text;  // everything generated, held-back text included
  StopReason reason;
  int generated;
  bool complete;  // Generator::grammar_complete()
};
Run generate(Runner& runner, const Tokenizer& tok, const std::string& prompt, const std::string& grammar, uint64_t seed,
             int max_tokens) {
  State state(runner.model().config());
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampler.top_p = 1.0f;  // all of the random model's noise
  o.sampler.seed = seed;
  o.grammar = grammar;
  Generator gen(runner, state, tok, tok.encode(prompt), o);
  Run r{};
  Generator::Piece p;
  do {
    p = gen.next();
    r.text += p.text;
  } while (!p.done);
  r.text += gen.finish();
  r.reason = p.reason;
  r.generated = gen.generated();
  r.complete = gen.grammar_complete();
  return r;
}

// The fixture models with their tokenizers; none when the fixtures are missing.
struct FixtureModel {
  const char* name;
  std::unique_ptr<Model> model;
  Tokenizer tok;
};
std::vector<FixtureModel> fixture_models() {
  const auto vocab = read_file(fixture("fix-vocab-300.txt"));
  auto world = load_fixture("fix-L3-C64-H2.pth");
  auto bytes = load_fixture("fix-L2-C64-H1.fp16.pth");
  std::vector<FixtureModel> out;
  if (!vocab || !world || !bytes) return out;
  out.push_back({"World-style vocabulary (V = 300)", std::move(world), Tokenizer::from_vocab_text(*vocab)});
  out.push_back({"byte-level (V = 260)", std::move(bytes), Tokenizer::byte_level()});
  return out;
}

}  // namespace

TEST_CASE("grammar: generation on the fixture models always matches", "[grammar][fixtures]") {
  auto setups = fixture_models();
  if (setups.empty()) {
    WARN("skipped: fixtures missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  const std::string letters_then_end = "root ::= [a-z]{3,}";
  const std::string utf8 = "root ::= ( [一-龥] | \"é\" | [a-z] | \"👍\" ){1,12} \".\"";
  for (auto& s : setups) {
    INFO(s.name);
    Runner runner(*s.model);
    int ended_by_eot = 0;
    for (const std::string* g : {&letters_then_end, &utf8}) {
      for (uint64_t seed = 1; seed <= 12; ++seed) {
        INFO("grammar " << *g << ", seed " << seed);
        const Run r = generate(runner, s.tok, "User: hello", *g, seed, 300);
        REQUIRE((r.reason == StopReason::Grammar || r.reason == StopReason::EndOfText || r.reason == StopReason::MaxTokens));
        CHECK(matches(*g, r.text));
        ended_by_eot += r.reason == StopReason::EndOfText;
      }
    }
    CHECK(ended_by_eot > 0);  // end of text was sampled, and only where the grammar could end
  }
}

TEST_CASE("grammar: JSON from noise parses, and a cut document is reported", "[grammar][fixtures]") {
  auto setups = fixture_models();
  if (setups.empty()) {
    WARN("skipped: fixtures missing in " << fixture_dir() << " (run: node scripts/make-fixtures.mjs)");
    return;
  }
  for (auto& s : setups) {
    Runner runner(*s.model);
    for (uint64_t seed = 1; seed <= 15; ++seed) {
      const Run r = generate(runner, s.tok, "{", kSmallJson, seed, 400);
      INFO(s.name << ", seed " << seed << ": " << r.text);
      CHECK(r.reason == StopReason::Grammar);
      CHECK(JsonCheck::valid(r.text));
      CHECK(r.complete);
    }
  }
  Runner runner(*setups[0].model);
  const Tokenizer& tok = setups[0].tok;
  // max_tokens in the middle of a document: reported as cut, the text a viable prefix.
  const std::string digits = "root ::= \"[\" [0-9]{20} \"]\"";
  const Run cut = generate(runner, tok, "x", digits, 3, 5);
  CHECK(cut.reason == StopReason::MaxTokensIncomplete);
  CHECK(std::string(stop_reason_name(cut.reason)) == "max_tokens_incomplete");
  CHECK(cut.text.size() == 5);
  GrammarAutomaton a(Grammar::parse(digits));
  CHECK(a.walk(a.start(), cut.text) != GrammarAutomaton::kDead);
  CHECK(!cut.complete);
  // max_tokens where the grammar could end: plain max_tokens.
  CHECK(generate(runner, tok, "x", "root ::= [0-9]+", 3, 5).reason == StopReason::MaxTokens);
  // A grammar that is complete before any token: nothing is generated.
  const Run empty = generate(runner, tok, "x", "root ::= \"\"", 3, 5);
  CHECK(empty.reason == StopReason::Grammar);
  CHECK(empty.generated == 0);
  // A grammar that does not parse fails the generator's construction.
  CHECK_THROWS_WITH(generate(runner, tok, "x", "root ::= \"a", 3, 5),
                    "grammar: line 1, column 10: the literal is not closed on its line (write \\n for a newline)");
}
