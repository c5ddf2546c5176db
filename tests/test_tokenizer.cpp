// World and byte-level tokenizers, the vocabulary parser, and the streaming UTF-8 decoder.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "text/sampler.h"  // rwkv::Rng: the same random strings on every platform
#include "test_support.h"
#include "base/utf8.h"
#include "text/tokenizer.h"

using Catch::Matchers::Contains;
using rwkv::Tokenizer;

namespace {

// The World tokenizer from the shared reference folder, or nothing (with a warning) when
// the vocabulary file is missing. Loaded once for the whole run.
const Tokenizer* world() {
  static const std::optional<Tokenizer> tok = []() -> std::optional<Tokenizer> {
    const auto text = read_file(std::string(reference_dir()) + "/vocab/rwkv_vocab_v20230424.txt");
    if (!text) return std::nullopt;
    return Tokenizer::from_vocab_text(*text);
  }();
  if (!tok)
    WARN("missing " << reference_dir() << "/vocab/rwkv_vocab_v20230424.txt: World tokenizer test skipped");
  return tok ? &*tok : nullptr;
}

// --- A minimal JSON reader, enough for golden/tokenizer.json ---------------------------

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  double number = 0;
  std::string text;
  std::vector<Json> items;       // array elements, or object values
  std::vector<std::string> keys;  // object keys, one per item

  const Json& at(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return items[i];
    throw std::runtime_error("JSON: no key " + key);
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  Json value() {
    skip_space();
    Json j;
    const char c = peek();
    if (c == '{') {
      j.kind = Json::Kind::Object;
      ++pos_;
      for (bool first = true; !consume('}'); first = false) {
        if (!first) expect(',');
        skip_space();
        j.keys.push_back(string());
        expect(':');
        j.items.push_back(value());
      }
    } else if (c == '[') {
      j.kind = Json::Kind::Array;
      ++pos_;
      for (bool first = true; !consume(']'); first = false) {
        if (!first) expect(',');
        j.items.push_back(value());
      }
    } else if (c == '"') {
      j.kind = Json::Kind::String;
      j.text = string();
    } else if (s_.compare(pos_, 4, "true") == 0 || s_.compare(pos_, 5, "false") == 0) {
      j.kind = Json::Kind::Bool;
      j.number = c == 't';
      pos_ += c == 't' ? 4 : 5;
    } else if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
    } else {
      j.kind = Json::Kind::Number;
      const size_t start = pos_;
      while (pos_ < s_.size() && std::string_view("+-.eE0123456789").find(s_[pos_]) != std::string_view::npos) ++pos_;
      if (start == pos_) fail("unexpected character");
      j.number = std::stod(std::string(s_.substr(start, pos_ - start)));
    }
    return j;
  }

 private:
  [[noreturn]] void fail(const char* what) { throw std::runtime_error("JSON at " + std::to_string(pos_) + ": " + what); }
  void skip_space() {
    while (pos_ < s_.size() && std::string_view(" \t\r\n").find(s_[pos_]) != std::string_view::npos) ++pos_;
  }
  char peek() { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool consume(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!consume(c)) fail("unexpected character");
  }
  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    const uint32_t v = uint32_t(std::stoul(std::string(s_.substr(pos_, 4)), nullptr, 16));
    pos_ += 4;
    return v;
  }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = s_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {  // surrogate pair
            pos_ += 2;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
          }
          rwkv::append_utf8(out, cp);
          break;
        }
        default: out += e;  // \" \\ \/
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// --- Helpers ----------------------------------------------------------------------------

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    if (n >= 2) {
      const auto c = static_cast<unsigned char>(s[i + 1]);
      if ((b == 0xE0 && c < 0xA0) || (b == 0xED && c > 0x9F) || (b == 0xF0 && c < 0x90) || (b == 0xF4 && c > 0x8F))
        return false;
    }
    i += n;
  }
  return true;
}

size_t below(rwkv::Rng& rng, size_t n) { return size_t(rng.next() % n); }


std::string random_utf8(rwkv::Rng& rng, size_t chars) {
  std::string s;
  for (size_t i = 0; i < chars; ++i) {
    uint32_t cp = 0;
    switch (below(rng, 5)) {
      case 0: cp = uint32_t(below(rng, 0x80)); break;
      case 1: cp = uint32_t(0x20 + below(rng, 0x5F)); break;
      case 2: cp = uint32_t(0x80 + below(rng, 0x800 - 0x80)); break;
      case 3: cp = uint32_t(0x800 + below(rng, 0x10000 - 0x800)); break;
      default: cp = uint32_t(0x10000 + below(rng, 0x110000 - 0x10000));
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x4E2D;
    rwkv::append_utf8(s, cp);
  }
  return s;
}

std::string random_bytes(rwkv::Rng& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += char(below(rng, 256));
  return s;
}

// Random strings of several kinds: raw bytes, valid UTF-8, NUL-heavy, broken UTF-8.
std::vector<std::string> random_strings(uint64_t seed, size_t count) {
  rwkv::Rng rng(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    const size_t n = below(rng, 80);
    switch (i % 4) {
      case 0: out.push_back(random_bytes(rng, n)); break;
      case 1: out.push_back(random_utf8(rng, n)); break;
      case 2: {
        std::string s = random_utf8(rng, n);
        for (char& c : s)
          if (below(rng, 4) == 0) c = '\0';
        out.push_back(s);
        break;
      }
      default: {
        std::string s = random_utf8(rng, n);
        if (!s.empty()) s.erase(below(rng, s.size()), 1);  // likely cuts a character
        s += char(0x80 | below(rng, 0x80));
        out.push_back(s);
      }
    }
  }
  return out;
}

// Greedy longest match by brute force: the definition the trie must reproduce.
class BruteForce {
 public:
  explicit BruteForce(const Tokenizer& tok) {
    for (size_t id = 0; id < tok.vocab_size(); ++id) {
      const std::string_view b = tok.token_bytes(int32_t(id));
      if (b.empty()) continue;
      ids_.emplace(b, int32_t(id));
      longest_ = std::max(longest_, b.size());
    }
  }
  std::vector<int32_t> encode(std::string_view s) const {
    std::vector<int32_t> out;
    for (size_t pos = 0; pos < s.size();) {
      for (size_t len = std::min(longest_, s.size() - pos); len > 0; --len) {
        const auto it = ids_.find(s.substr(pos, len));
        if (it == ids_.end()) continue;
        out.push_back(it->second);
        pos += len;
        break;
      }
    }
    return out;
  }

 private:
  std::unordered_map<std::string_view, int32_t> ids_;  // views into the tokenizer
  size_t longest_ = 0;
};

// A small vocabulary like the World file: ids 1..256 the single bytes, then samples of
// every literal form and escape the parser must handle.
std::string tiny_vocab() {
  std::string v;
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%02x", b);
    v += std::to_string(b + 1) + " b'\\x" + hex + "' 1\n";
  }
  v += R"(257 'ab' 2
258 'abc' 3
259 'abcd' 4
260 "it's" 4
261 'say "hi"' 8
262 '\n\n' 2
263 '\t\\' 2
264 '\u4e2d' 3
265 '\U0001F600' 4
266 '\xe9t\xe9' 5
267 b'\xe9\x00' 2
268 'x\0y' 3
269 '\101\7' 2
270 '\a\b\f\v\r' 5
271 b'\\x41' 4
272 '中文' 6
273 b'\q' 2
274 '\'\"' 2
275 ' \x20 ' 3
)";
  return v;
}

}  // namespace

TEST_CASE("World tokenizer matches the official tokenizer on the golden pairs", "[tokenizer]") {
  const Tokenizer* tok = world();
  if (!tok) return;
  const std::string path = std::string(reference_dir()) + "/golden/tokenizer.json";
  const auto text = read_file(path);
  if (!text) {
    WARN("missing " << path << ": golden tokenizer pairs skipped");
    return;
  }
  const Json pairs = JsonReader(*text).value();
  REQUIRE(pairs.items.size() > 0);
  for (const Json& pair : pairs.items) {
    const std::string& s = pair.at("text").text;
    std::vector<int32_t> expected;
    for (const Json& id : pair.at("ids").items) expected.push_back(int32_t(id.number));
    INFO("text: " << s);
    CHECK(tok->encode(s) == expected);
    CHECK(tok->decode(expected) == s);
  }
}

TEST_CASE("World vocabulary: ids, bytes and errors", "[tokenizer]") {
  const Tokenizer* tok = world();
  if (!tok) return;
  CHECK(tok->vocab_size() == 65530);
  CHECK(tok->token_bytes(0).empty());
  CHECK(tok->token_bytes(1) == std::string_view("\0", 1));
  CHECK(tok->token_bytes(256) == "\xff");
  CHECK(tok->token_bytes(257) == "\t\t");
  CHECK(tok->token_bytes(65529) == std::string(128, ' '));
  const int32_t with_zero[] = {0, 33155, 0, 45};
  CHECK(tok->decode(with_zero) == tok->decode(std::vector<int32_t>{33155, 45}));
  CHECK(tok->encode("").empty());
  REQUIRE_THROWS_WITH(tok->token_bytes(65530), Contains("65530"));
  const int32_t bad[] = {5, -1};
  REQUIRE_THROWS_AS(tok->decode(bad), rwkv::Error);
  REQUIRE_THROWS_WITH(tok->decode(bad), Contains("-1"));
}

TEST_CASE("World tokenizer round-trips random bytes and matches brute-force greedy", "[tokenizer]") {
  const Tokenizer* tok = world();
  if (!tok) return;
  for (const std::string& s : random_strings(1, 4000)) {
    const auto ids = tok->encode(s);
    REQUIRE(tok->decode(ids) == s);
  }
  const BruteForce brute(*tok);
  rwkv::Rng rng(2);
  for (int i = 0; i < 1000; ++i) {
    // Concatenated tokens, sometimes with a byte cut off, exercise long matches.
    std::string s;
    for (size_t k = below(rng, 12); k > 0; --k) s += tok->token_bytes(int32_t(1 + below(rng, tok->vocab_size() - 1)));
    if (!s.empty() && i % 2) s.erase(below(rng, s.size()), 1);
    INFO("case " << i);
    REQUIRE(tok->encode(s) == brute.encode(s));
  }
  for (const std::string& s : random_strings(3, 1000)) REQUIRE(tok->encode(s) == brute.encode(s));
}

TEST_CASE("Vocabulary parser: literals, escapes, greedy longest match", "[tokenizer]") {
  const Tokenizer tok = Tokenizer::from_vocab_text(tiny_vocab());
  CHECK(tok.vocab_size() == 276);
  CHECK(tok.token_bytes(1) == std::string_view("\0", 1));
  CHECK(tok.token_bytes(256) == "\xff");
  CHECK(tok.token_bytes(260) == "it's");
  CHECK(tok.token_bytes(261) == "say \"hi\"");
  CHECK(tok.token_bytes(262) == "\n\n");
  CHECK(tok.token_bytes(263) == "\t\\");
  CHECK(tok.token_bytes(264) == "\xe4\xb8\xad");
  CHECK(tok.token_bytes(265) == "\xf0\x9f\x98\x80");
  CHECK(tok.token_bytes(266) == "\xc3\xa9t\xc3\xa9");  // \xe9 in a str is U+00E9
  CHECK(tok.token_bytes(267) == std::string_view("\xe9\0", 2));
  CHECK(tok.token_bytes(268) == std::string_view("x\0y", 3));
  CHECK(tok.token_bytes(269) == "A\x07");
  CHECK(tok.token_bytes(270) == "\a\b\f\v\r");
  CHECK(tok.token_bytes(271) == "\\x41");
  CHECK(tok.token_bytes(272) == "中文");
  CHECK(tok.token_bytes(273) == "\\q");
  CHECK(tok.token_bytes(274) == "'\"");
  CHECK(tok.token_bytes(275) == "   ");

  using V = std::vector<int32_t>;
  const auto byte = [](char c) { return int32_t(static_cast<unsigned char>(c)) + 1; };
  CHECK(tok.encode("abcde") == V{259, byte('e')});
  CHECK(tok.encode("abcab") == V{258, 257});
  CHECK(tok.encode("abx") == V{257, byte('x')});
  CHECK(tok.encode("a") == V{byte('a')});
  CHECK(tok.encode("中文中") == V{272, 264});
  CHECK(tok.encode(std::string_view("\xe9\0\xe9", 3)) == V{267, byte('\xe9')});
  CHECK(tok.encode("\n\n\n") == V{262, byte('\n')});
  const BruteForce brute(tok);
  for (const std::string& s : random_strings(4, 1000)) {
    REQUIRE(tok.decode(tok.encode(s)) == s);
    REQUIRE(tok.encode(s) == brute.encode(s));
  }
}

TEST_CASE("Vocabulary parser: blank lines and CRLF", "[tokenizer]") {
  const Tokenizer tok = Tokenizer::from_vocab_text("1 'a' 1\r\n\n3 b'bc' 2\r\n");
  CHECK(tok.vocab_size() == 4);
  CHECK(tok.token_bytes(2).empty());
  CHECK(tok.encode("abca") == std::vector<int32_t>{1, 3, 1});
  REQUIRE_THROWS_WITH(tok.encode("ax"), Contains("offset 1"));
}

TEST_CASE("Vocabulary parser: malformed lines name the line and the fault", "[tokenizer]") {
  const std::string ok = "1 'a' 1\n2 'b' 1\n";
  const std::pair<const char*, const char*> cases[] = {
      {"3 'c' 2", "LEN says 2"},
      {"3 'c 1", "quoted"},
      {"3 c 1", "quoted"},
      {"x 'c' 1", "ID"},
      {"0 'c' 1", "ID"},
      {"3 'c' x", "LEN"},
      {"3 'c'", "ID REPR LEN"},
      {"3", "ID REPR LEN"},
      {"1 'c' 1", "already defined on line 1"},
      {"3 'a' 1", "same bytes as token 1"},
      {"3 '\\x4' 1", "\\x"},
      {"3 '\\xg0' 1", "hex"},
      {"3 '\\ud800' 3", "code point"},
      {"3 '\\U00110000' 4", "code point"},
      {"3 b'\\777' 1", "0xFF"},
      {"3 b'\xc3\xa9' 2", "non-ASCII"},
      {"3 'c'c' 3", "quote"},
      {"3 'c\\' 1", "backslash"},
      {"3 '' 0", "empty"},
      {"3 '\\N{DASH}' 1", "\\N"},
      {"99999999 'c' 1", "ID"},
  };
  for (const auto& [line, fault] : cases) {
    INFO("line: " << line);
    REQUIRE_THROWS_AS(Tokenizer::from_vocab_text(ok + line + "\n"), rwkv::Error);
    REQUIRE_THROWS_WITH(Tokenizer::from_vocab_text(ok + line + "\n"), Contains("line 3") && Contains(fault));
  }
  REQUIRE_THROWS_WITH(Tokenizer::from_vocab_text("\n\n"), Contains("no tokens"));
}

TEST_CASE("Byte-level tokenizer", "[tokenizer]") {
  const Tokenizer tok = Tokenizer::byte_level();
  CHECK(tok.vocab_size() == 256);
  std::string all;
  std::vector<int32_t> ids;
  for (int b = 0; b < 256; ++b) {
    all += char(b);
    ids.push_back(b);
  }
  CHECK(tok.encode(all) == ids);
  CHECK(tok.decode(ids) == all);
  CHECK(tok.token_bytes(0) == std::string_view("\0", 1));
  REQUIRE_THROWS_WITH(tok.token_bytes(256), Contains("256"));
  for (const std::string& s : random_strings(5, 500)) REQUIRE(tok.decode(tok.encode(s)) == s);
}

TEST_CASE("Utf8Stream holds back incomplete characters only", "[tokenizer]") {
  SECTION("specific sequences") {
    rwkv::Utf8Stream u;
    CHECK(u.push("a\xe4\xb8") == "a");
    CHECK(u.push("\xad") == "\xe4\xb8\xad");
    CHECK(u.push("\xf0\x9f\x98") == "");
    CHECK(u.flush() == "\xf0\x9f\x98");
    CHECK(u.flush() == "");
    CHECK(u.push("\xe4") == "");
    CHECK(u.push("A") == "\xe4" "A");   // can never complete: released
    CHECK(u.push("\xc0") == "\xc0");    // never a lead byte
    CHECK(u.push("\xed\xa0") == "\xed\xa0");  // would be a surrogate
    CHECK(u.push("\xf4\x90") == "\xf4\x90");  // would be above U+10FFFF
    CHECK(u.push("\xe0\x80") == "\xe0\x80");  // would be overlong
    CHECK(u.push("\x80\x80") == "\x80\x80");  // stray continuation bytes
    CHECK(u.push(std::string_view("\0", 1)) == std::string_view("\0", 1));
  }
  SECTION("random splits of valid UTF-8 emit whole characters") {
    rwkv::Rng rng(6);
    for (int i = 0; i < 2000; ++i) {
      const std::string s = random_utf8(rng, below(rng, 40));
      rwkv::Utf8Stream u;
      std::string out;
      for (size_t pos = 0; pos < s.size();) {
        const size_t n = std::min(s.size() - pos, below(rng, 6));
        const std::string piece = u.push(std::string_view(s).substr(pos, n));
        REQUIRE(valid_utf8(piece));
        out += piece;
        pos += n;
      }
      out += u.flush();
      REQUIRE(out == s);
    }
  }
  SECTION("random bytes come out unchanged, at most 3 bytes held") {
    rwkv::Rng rng(7);
    for (const std::string& s : random_strings(8, 2000)) {
      rwkv::Utf8Stream u;
      std::string out;
      for (size_t pos = 0; pos < s.size();) {
        const size_t n = std::min(s.size() - pos, 1 + below(rng, 5));
        out += u.push(std::string_view(s).substr(pos, n));
        pos += n;
        REQUIRE(pos - out.size() <= 3);
      }
      out += u.flush();
      REQUIRE(out == s);
    }
  }
}

TEST_CASE("Tokenizer speed (report only)", "[.bench]") {
  const std::string path = std::string(reference_dir()) + "/vocab/rwkv_vocab_v20230424.txt";
  const auto vocab = read_file(path);
  if (!vocab) {
    WARN("missing " << path << ": tokenizer benchmark skipped");
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Tokenizer tok = Tokenizer::from_vocab_text(*vocab);
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  // ~5 MB of English prose, CJK text and code, mixed in random runs.
  const char* english[] = {"The quick brown fox jumps over the lazy dog. ", "In a shocking finding, scientists discovered ",
                           "a herd of dragons living in a remote valley. ", "However, the results were inconclusive; ",
                           "\n\nUser: what is the capital of France?\n\nAssistant: Paris.\n"};
  const char* code[] = {"def f(x):\n    return x**2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }\n",
                        "const result = await fetch(url, { method: 'POST' });\n", "    if err != nil {\n        return err\n    }\n"};
  rwkv::Rng rng(9);
  std::string text;
  while (text.size() < 5'000'000) {
    switch (below(rng, 3)) {
      case 0: text += english[below(rng, 5)]; break;
      case 1: text += code[below(rng, 4)]; break;
      default:
        for (size_t k = 5 + below(rng, 30); k > 0; --k) rwkv::append_utf8(text, uint32_t(0x4E00 + below(rng, 0x1000)));
        text += "。";
    }
  }
  const auto t1 = Clock::now();
  const auto ids = tok.encode(text);
  const double encode_s = std::chrono::duration<double>(Clock::now() - t1).count();
  const auto t2 = Clock::now();
  const std::string back = tok.decode(ids);
  const double decode_s = std::chrono::duration<double>(Clock::now() - t2).count();
  REQUIRE(back == text);
  std::printf("vocabulary load: %.1f ms\nencode: %.1f MB/s (%zu bytes -> %zu tokens)\ndecode: %.1f MB/s\n", load_ms,
              double(text.size()) / encode_s / 1e6, text.size(), ids.size(), double(text.size()) / decode_s / 1e6);
}
