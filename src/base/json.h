#pragma once
// A small JSON reader for the headers of model files (safetensors, our own .rwkv format):
// objects, arrays, strings, integers, true/false/null. No floating-point numbers (a
// header has none), at most 16 levels deep, int64 range checked. Throws rwkv::Error
// naming the document and the byte offset at fault.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/utf8.h"

namespace rwkv {

class Json {
 public:
  struct Node {
    enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
    std::string str;
    int64_t num = 0;
    std::vector<std::string> keys;  // Object: keys[i] names values[i]
    std::vector<Node> values;
    std::vector<Node> elements;                         // Array
    const Node* get(std::string_view key) const {
      for (size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == key) return &values[i];
      return nullptr;
    }
  };
  // `what` names the document in errors ("safetensors header: invalid JSON at byte ...").
  Json(std::string_view text, std::string_view what) : s_(text), what_(what) {}
  Node parse() {
    Node n = value(0);
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(std::string(what_) + ": invalid JSON at byte " + std::to_string(i_) + ": " + msg);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  Node value(int depth) {
    if (depth > 16) fail("nested too deeply");
    Node n;
    const char c = peek();
    if (c == '{') {
      n.kind = Node::Kind::Object;
      ++i_;
      if (peek() == '}') return ++i_, n;
      for (;;) {
        std::string k = string();
        expect(':');
        n.keys.push_back(std::move(k));
        n.values.push_back(value(depth + 1));
        if (peek() == ',') { ++i_; continue; }
        expect('}');
        return n;
      }
    }
    if (c == '[') {
      n.kind = Node::Kind::Array;
      ++i_;
      if (peek() == ']') return ++i_, n;
      for (;;) {
        n.elements.push_back(value(depth + 1));
        if (peek() == ',') { ++i_; continue; }
        expect(']');
        return n;
      }
    }
    if (c == '"') {
      n.kind = Node::Kind::String;
      n.str = string();
      return n;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      n.kind = Node::Kind::Number;
      const bool neg = c == '-';
      if (neg) ++i_;
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') fail("bad number");
      uint64_t v = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (v >= (uint64_t(1) << 59)) fail("number too large");  // 10 v + 9 < 2^63: no overflow
        v = v * 10 + uint64_t(s_[i_++] - '0');
      }
      if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) fail("non-integer number");
      n.num = neg ? -int64_t(v) : int64_t(v);
      return n;
    }
    for (auto [word, kind] : {std::pair{"true", Node::Kind::Bool}, {"false", Node::Kind::Bool}, {"null", Node::Kind::Null}}) {
      const std::string_view w(word);
      if (s_.substr(i_, w.size()) == w) {
        i_ += w.size();
        n.kind = kind;
        return n;
      }
    }
    fail("unexpected character");
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("short \\u escape");
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            const int h = hex_value(s_[i_++]);
            if (h < 0) fail("bad \\u escape");
            cp = cp * 16 + unsigned(h);
          }
          append_utf8(out, cp);  // names are compared as bytes: a lone surrogate stays as it is
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  std::string_view s_;
  std::string_view what_;
  size_t i_ = 0;
};

}  // namespace rwkv
