#pragma once
// Stop strings over streamed text: releases generated text as soon as it cannot be the
// start of a stop string, and ends the stream at the first stop string that completes
// (docs/sampling.md#text-held-back).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rwkv {

class StopMatcher {
 public:
  struct Step {
    std::string text;     // may be emitted now
    bool stopped = false;  // a stop string completed; `text` is everything before it
    size_t stop = 0;       // which stop string (index into the constructor's list) when stopped
  };

  // Throws rwkv::Error when a stop string is empty. No stop strings: text passes through.
  explicit StopMatcher(std::vector<std::string> stops);

  // Takes the next piece of text (bytes). Text that could still be the beginning of a
  // stop string is held back until later pieces decide. When stop strings complete, the
  // one that ends first wins (the longest of those ending at the same byte); the stop
  // string and everything after it are dropped. After a stop every call returns an
  // empty, stopped Step.
  Step push(std::string_view piece);
  // The held-back text at the end of the stream (empty after a stop).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // a proper prefix of some stop string, shorter than the longest one
  bool stopped_ = false;
  size_t stop_ = 0;
};

}  // namespace rwkv
