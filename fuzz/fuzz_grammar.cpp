// FUZZ_MAX_LEN 4096
// FUZZ_DICTS grammar
//
// rwkv::Grammar::parse (docs/grammar.md) on arbitrary text: the input up to its first NUL
// byte is the grammar, the bytes after it a text to run through it. A grammar that
// parses is run over the text byte by byte: the byte-level mask must allow exactly the
// bytes the automaton accepts, and a compacted automaton must go on exactly as before.
#include <memory>
#include <string_view>

#include "harness.h"
#include "text/grammar_matcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz_run([&] {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const size_t nul = all.find('\0');
    const std::string_view text = all.substr(0, nul);
    const std::string_view subject = nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1);
    using rwkv::GrammarAutomaton;
    GrammarAutomaton a(rwkv::Grammar::parse(text)), b(rwkv::Grammar::parse(text));
    static const rwkv::Tokenizer bytes = rwkv::Tokenizer::byte_level();
    rwkv::GrammarMatcher m(rwkv::Grammar::parse(text), std::make_shared<const rwkv::TokenTrie>(bytes, 256, 0));
    auto s = a.start();
    for (size_t i = 0; i < subject.size(); ++i) {
      const uint8_t c = uint8_t(subject[i]);
      if (c == 0) break;  // token 0 is end of text, not the byte 0
      const auto next = a.next(s, c);
      FUZZ_CHECK(m.allows(c) == (next != GrammarAutomaton::kDead));
      FUZZ_CHECK(m.allows(0) == a.accepting(s));
      if (next == GrammarAutomaton::kDead) break;
      m.accept(c);
      s = next;
      FUZZ_CHECK(m.can_end() == a.accepting(s));
      if (i == subject.size() / 2) {  // compact half way: the rest must read the same
        const auto kept = b.compact(b.walk(b.start(), subject.substr(0, i + 1)));
        const auto rest = subject.substr(i + 1);
        FUZZ_CHECK(b.accepting(b.walk(kept, rest)) == a.accepting(a.walk(s, rest)));
      }
    }
  });
}
