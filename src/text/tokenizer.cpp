#include "text/tokenizer.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "base/error.h"
#include "base/utf8.h"

namespace rwkv {
namespace {

constexpr int64_t kMaxId = (1 << 24) - 1;  // bounds the id tables a vocabulary file can make us allocate

std::string line_error(size_t line, const std::string& what) {
  return "vocabulary line " + std::to_string(line) + ": " + what;
}

// A decimal integer that fills `s` exactly and fits int32, or -1.
int64_t parse_decimal(std::string_view s) {
  int32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0) return -1;
  return v;
}

// Appends the bytes of a Python str literal ('...' / "...", encoded as UTF-8) or bytes
// literal (b'...' / b"...") to `out`, with Python's escape sequences.
void decode_python_literal(std::string_view repr, size_t line, std::string& out) {
  const bool is_bytes = !repr.empty() && repr[0] == 'b';
  if (is_bytes) repr.remove_prefix(1);
  if (repr.size() < 2 || (repr[0] != '\'' && repr[0] != '"') || repr.back() != repr[0])
    throw Error(line_error(line, "token is not a quoted Python str or bytes literal"));
  const char quote = repr[0];
  const std::string_view body = repr.substr(1, repr.size() - 2);
  // A value given by an escape: a code point in a str, a byte in a bytes literal.
  auto put = [&](uint32_t v, std::string_view esc) {
    if (is_bytes) {
      if (v > 0xFF) throw Error(line_error(line, "escape \\" + std::string(esc) + " is above 0xFF in a bytes literal"));
      out += char(v);
    } else {
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        throw Error(line_error(line, "escape \\" + std::string(esc) + " is not a code point that UTF-8 can encode"));
      append_utf8(out, v);
    }
  };
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == quote) throw Error(line_error(line, "unescaped quote inside the literal"));
    if (c != '\\') {
      if (is_bytes && static_cast<unsigned char>(c) >= 0x80)
        throw Error(line_error(line, "non-ASCII character in a bytes literal"));
      out += c;
      continue;
    }
    if (++i == body.size()) throw Error(line_error(line, "literal ends with a lone backslash"));
    const char e = body[i];
    switch (e) {
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        const size_t start = i;
        uint32_t v = 0;
        while (i < body.size() && i < start + 3 && body[i] >= '0' && body[i] <= '7') v = v * 8 + uint32_t(body[i++] - '0');
        --i;
        put(v, body.substr(start, i + 1 - start));
        break;
      }
      case 'x': case 'u': case 'U': {
        if (e != 'x' && is_bytes) {  // Python keeps unknown escapes in bytes as they are
          out += '\\';
          out += e;
          break;
        }
        const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (body.size() - i - 1 < digits)
          throw Error(line_error(line, std::string("truncated \\") + e + " escape"));
        uint32_t v = 0;
        for (size_t k = 1; k <= digits; ++k) {
          const int h = hex_value(body[i + k]);
          if (h < 0) throw Error(line_error(line, std::string("bad hex digit in \\") + e + " escape"));
          v = v * 16 + uint32_t(h);
        }
        put(v, body.substr(i, digits + 1));
        i += digits;
        break;
      }
      case 'N':
        if (!is_bytes) throw Error(line_error(line, "\\N{...} named escapes are not supported"));
        [[fallthrough]];
      default:  // not an escape: Python keeps the backslash
        out += '\\';
        out += e;
    }
  }
}

// Length of the incomplete UTF-8 sequence that ends `s` and could still be completed by
// later bytes (0 when the end is a character boundary or cannot be completed).
size_t incomplete_tail(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[s.size() - k]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (need <= k) return 0;
    if (k >= 2) {  // the second byte's range depends on the lead (no overlongs, surrogates, > U+10FFFF)
      const auto c = static_cast<unsigned char>(s[s.size() - k + 1]);
      const unsigned char lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
      if (c < lo || c > hi) return 0;
    }
    return k;
  }
  return 0;
}

}  // namespace

Tokenizer Tokenizer::from_vocab_text(std::string_view text) {
  Tokenizer tok;
  struct Parsed {
    int32_t id;
    uint32_t begin, end;  // its bytes in `all`
  };
  std::vector<Parsed> parsed;     // in file order
  std::string all;                // the token bytes in file order
  std::vector<uint32_t> line_of;  // id -> line number (0: none)
  size_t line = 0;
  while (!text.empty()) {
    ++line;
    const size_t eol = text.find('\n');
    std::string_view l = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;

    const size_t first = l.find(' '), last = l.rfind(' ');
    if (first == std::string_view::npos || first == last)
      throw Error(line_error(line, "expected `ID REPR LEN`"));
    const int64_t id = parse_decimal(l.substr(0, first));
    if (id < 1 || id > kMaxId) throw Error(line_error(line, "ID must be an integer from 1 to " + std::to_string(kMaxId)));
    const int64_t len = parse_decimal(l.substr(last + 1));
    if (len < 0) throw Error(line_error(line, "LEN must be a non-negative integer"));
    const size_t begin = all.size();
    decode_python_literal(l.substr(first + 1, last - first - 1), line, all);
    const size_t size = all.size() - begin;
    if (size != size_t(len))
      throw Error(line_error(line, "token has " + std::to_string(size) + " bytes but LEN says " + std::to_string(len)));
    if (size == 0) throw Error(line_error(line, "empty token"));
    if (size_t(id) >= line_of.size()) line_of.resize(size_t(id) + 1, 0);
    if (line_of[size_t(id)] != 0)
      throw Error(line_error(line, "ID " + std::to_string(id) + " already defined on line " + std::to_string(line_of[size_t(id)])));
    line_of[size_t(id)] = uint32_t(line);
    parsed.push_back({int32_t(id), uint32_t(begin), uint32_t(all.size())});
  }
  if (parsed.empty()) throw Error("vocabulary has no tokens");

  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) { return a.id < b.id; });
  tok.blob_.reserve(all.size());
  tok.offsets_.assign(line_of.size() + 1, 0);
  size_t next = 0;
  for (int32_t id = 0; id < int32_t(line_of.size()); ++id) {
    if (next < parsed.size() && parsed[next].id == id) {
      tok.blob_.append(all, parsed[next].begin, parsed[next].end - parsed[next].begin);
      ++next;
    }
    tok.offsets_[size_t(id) + 1] = uint32_t(tok.blob_.size());
  }
  tok.build(line_of);
  return tok;
}

Tokenizer Tokenizer::byte_level() {
  Tokenizer tok;
  tok.offsets_.resize(257);
  for (int b = 0; b < 256; ++b) {
    tok.blob_ += char(b);
    tok.offsets_[size_t(b) + 1] = uint32_t(b + 1);
  }
  tok.build({});
  return tok;
}

void Tokenizer::build(const std::vector<uint32_t>& line_of) {
  std::vector<Entry> entries;
  entries.reserve(vocab_size());
  for (size_t id = 0; id < vocab_size(); ++id) {
    const std::string_view b = token_bytes(int32_t(id));
    if (b.empty()) continue;
    uint64_t prefix = 0;  // the first 8 bytes, big-endian, zero-padded: orders like the bytes
    for (size_t k = 0; k < 8; ++k) prefix = prefix << 8 | (k < b.size() ? static_cast<unsigned char>(b[k]) : 0u);
    entries.push_back({b, prefix, int32_t(id)});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.prefix != b.prefix ? a.prefix < b.prefix : a.bytes < b.bytes;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].bytes != entries[i - 1].bytes) continue;
    const auto line = [&](int32_t id) { return size_t(id) < line_of.size() ? line_of[size_t(id)] : 0u; };
    const auto [a, b] = std::minmax(entries[i - 1].id, entries[i].id);
    throw Error(line_error(line(b), "token " + std::to_string(b) + " has the same bytes as token " +
                                        std::to_string(a) + " (line " + std::to_string(line(a)) + ")"));
  }

  build_trie(entries);
}

// Fills cells_ from the sorted, distinct entries. Each task is a node whose path is the
// first `depth` bytes shared by the entries [lo, hi); a work list instead of recursion
// keeps long tokens off the call stack.
void Tokenizer::build_trie(const std::vector<Entry>& entries) {
  cells_.assign(1024, Cell{});
  cells_[0].check = -2;  // the root is nobody's child
  // The free cells as a circular doubly linked list in index order, with cell 0 (the
  // root, never free) as its sentinel, so the search for a base visits free cells only.
  std::vector<int32_t> next(cells_.size()), prev(cells_.size());
  auto link_free = [&](size_t from) {
    for (size_t i = from; i < cells_.size(); ++i) {
      const int32_t tail = prev[0];
      next[size_t(tail)] = int32_t(i);
      prev[i] = tail;
      next[i] = 0;
      prev[0] = int32_t(i);
    }
  };
  auto grow = [&] {
    const size_t old = cells_.size();
    cells_.resize(old * 2);
    next.resize(old * 2);
    prev.resize(old * 2);
    link_free(old);
  };
  link_free(1);
  // Several children rarely fit into the scattered free cells low in the array; their
  // searches start here, leaving those cells to single children (keeps the build linear).
  size_t multi_from = 1;

  struct Task {
    size_t lo, hi, depth;
    int32_t node;
  };
  std::vector<Task> work{{0, entries.size(), 0, 0}};
  std::vector<std::pair<uint8_t, size_t>> groups;  // (byte at depth, first entry) per child
  while (!work.empty()) {
    const Task t = work.back();
    work.pop_back();
    size_t i = t.lo;
    if (i < t.hi && entries[i].bytes.size() == t.depth) cells_[size_t(t.node)].token = entries[i++].id;
    groups.clear();
    for (; i < t.hi; ++i) {
      const auto c = static_cast<uint8_t>(entries[i].bytes[t.depth]);
      if (groups.empty() || groups.back().first != c) groups.emplace_back(c, i);
    }
    if (groups.empty()) continue;

    // The first base >= 1, trying free cells from the list's start (from multi_from
    // for several children), for which every child's cell (base + byte) is free.
    size_t base = 0, tried = 0;
    size_t p = size_t(next[0]);
    if (groups.size() > 1) {
      p = std::max(p, multi_from);
      while (cells_[p].check != -1) ++p;  // the last cell is always free
    }
    for (;; p = size_t(next[p])) {
      if (p == 0) {  // past the last free cell: continue in fresh ones
        p = cells_.size();
        grow();
      }
      if (p + 256 >= cells_.size()) grow();
      if (p <= groups[0].first) continue;
      if (++tried == 32 && groups.size() > 1) multi_from = p;  // the cells before p are crowded
      base = p - groups[0].first;
      if (std::all_of(groups.begin(), groups.end(), [&](const auto& g) { return cells_[base + g.first].check == -1; }))
        break;
    }
    cells_[size_t(t.node)].base = int32_t(base);
    for (size_t g = 0; g < groups.size(); ++g) {
      const size_t child = base + groups[g].first;
      cells_[child].check = t.node;
      next[size_t(prev[child])] = next[child];
      prev[size_t(next[child])] = prev[child];
      const size_t end = g + 1 < groups.size() ? groups[g + 1].second : t.hi;
      work.push_back({groups[g].second, end, t.depth + 1, int32_t(child)});
    }
  }

  size_t used = 0;
  for (size_t i = 0; i < cells_.size(); ++i)
    if (cells_[i].check != -1) used = i;
  cells_.resize(used + 256);  // base + byte stays in range for every node
  cells_.shrink_to_fit();
}

std::vector<int32_t> Tokenizer::encode(std::string_view bytes) const {
  std::vector<int32_t> out;
  out.reserve(bytes.size() / 3 + 1);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const Cell* cells = cells_.data();
  size_t pos = 0;
  while (pos < n) {
    int32_t s = 0, token = -1;
    size_t len = 0;
    for (size_t i = pos; i < n; ++i) {
      const int32_t t = cells[s].base + p[i];
      if (cells[t].check != s) break;
      s = t;
      if (cells[s].token >= 0) {
        token = cells[s].token;
        len = i + 1 - pos;
      }
    }
    if (token < 0) throw Error("tokenizer: byte " + std::to_string(p[pos]) + " at offset " + std::to_string(pos) + " has no token");
    out.push_back(token);
    pos += len;
  }
  return out;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || size_t(id) >= vocab_size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
  return std::string_view(blob_).substr(offsets_[size_t(id)], offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  size_t size = 0;
  for (const int32_t id : ids) size += token_bytes(id).size();
  std::string out;
  out.reserve(size);
  for (const int32_t id : ids) out.append(blob_, offsets_[size_t(id)], offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
  return out;
}

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out = std::move(held_);
  out += bytes;
  const size_t keep = incomplete_tail(out);
  held_.assign(out, out.size() - keep, keep);
  out.resize(out.size() - keep);
  return out;
}

std::string Utf8Stream::flush() { return std::exchange(held_, std::string()); }

}  // namespace rwkv
