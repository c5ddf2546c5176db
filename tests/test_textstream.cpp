// StopMatcher: stop strings found across piece boundaries, held-back prefixes.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "base/error.h"
#include "text/sampler.h"  // rwkv::Rng for the random splits
#include "text/textstream.h"

using Catch::Matchers::Contains;
using rwkv::StopMatcher;

namespace {

struct Outcome {
  std::vector<std::string> emitted;  // per push
  std::string text;                  // everything emitted, finish() included
  bool stopped = false;
  size_t stop = 0;
};

Outcome run(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopMatcher m(std::move(stops));
  Outcome out;
  for (const std::string& piece : pieces) {
    const StopMatcher::Step step = m.push(piece);
    out.emitted.push_back(step.text);
    out.text += step.text;
    if (step.stopped) {
      out.stopped = true;
      out.stop = step.stop;
      break;
    }
  }
  out.text += m.finish();
  return out;
}

}  // namespace

TEST_CASE("A stop string split across three pieces", "[textstream]") {
  const Outcome o = run({"\n\nUser:"}, {"Hello\n", "\nUs", "er: more"});
  CHECK(o.emitted == std::vector<std::string>{"Hello", "", ""});
  CHECK(o.stopped);
  CHECK(o.text == "Hello");
}

TEST_CASE("False starts are released once they cannot match", "[textstream]") {
  const Outcome a = run({"abc"}, {"xab", "d", "ab", "ab", "c!"});
  CHECK(a.emitted == std::vector<std::string>{"x", "abd", "", "ab", ""});
  CHECK(a.stopped);
  CHECK(a.text == "xabdab");

  const Outcome b = run({"aab"}, {"aa", "a", "b"});  // the match starts one byte later
  CHECK(b.emitted == std::vector<std::string>{"", "a", ""});
  CHECK(b.stopped);
  CHECK(b.text == "a");

  const Outcome c = run({"abc"}, {"xa", "b"});  // never completed: finish() releases the rest
  CHECK(c.emitted == std::vector<std::string>{"x", ""});
  CHECK_FALSE(c.stopped);
  CHECK(c.text == "xab");
}

TEST_CASE("Several stop strings: the first to complete wins", "[textstream]") {
  const Outcome a = run({"\n\n", "User:"}, {"Hi User: x\n\n"});
  CHECK(a.stopped);
  CHECK(a.stop == 1);
  CHECK(a.text == "Hi ");

  const Outcome b = run({"abcd", "bc"}, {"ab", "c", "d"});  // "bc" ends first
  CHECK(b.stop == 1);
  CHECK(b.text == "a");

  const Outcome c = run({"c", "abc"}, {"xab", "c"});  // same end: the longer one
  CHECK(c.stop == 1);
  CHECK(c.text == "x");
}

TEST_CASE("A stop string at the very start", "[textstream]") {
  const Outcome a = run({"END"}, {"END of it"});
  CHECK(a.stopped);
  CHECK(a.text.empty());
  const Outcome b = run({"END"}, {"E", "N", "D", "more"});
  CHECK(b.emitted == std::vector<std::string>{"", "", ""});
  CHECK(b.stopped);
  CHECK(b.text.empty());
}

TEST_CASE("After a stop nothing more comes out", "[textstream]") {
  StopMatcher m({"\n\n"});
  CHECK(m.push("a\n\nb").text == "a");
  CHECK(m.stopped());
  const StopMatcher::Step after = m.push("more");
  CHECK(after.stopped);
  CHECK(after.text.empty());
  CHECK(m.finish().empty());
}

TEST_CASE("Without stop strings text passes through; empty ones are refused", "[textstream]") {
  const Outcome o = run({}, {"a", "b\n\n", "c"});
  CHECK(o.emitted == std::vector<std::string>{"a", "b\n\n", "c"});
  CHECK(o.text == "ab\n\nc");
  REQUIRE_THROWS_AS(StopMatcher({"x", ""}), rwkv::Error);
  REQUIRE_THROWS_WITH(StopMatcher({"x", ""}), Contains("stop string 1"));
}

TEST_CASE("Random splits give the text before the first occurrence", "[textstream]") {
  rwkv::Rng rng(11);
  const std::string stop = "\n\nab";
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    for (size_t n = rng.next() % 40; n > 0; --n) text += "ab\n"[rng.next() % 3];
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min<size_t>(text.size() - pos, rng.next() % 6);
      pieces.push_back(text.substr(pos, n));
      pos += n;
    }
    const Outcome o = run({stop}, pieces);
    const size_t at = text.find(stop);
    INFO("text: " << text);
    REQUIRE(o.stopped == (at != std::string::npos));
    REQUIRE(o.text == text.substr(0, at));
  }
}
