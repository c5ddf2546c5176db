#include "text/textstream.h"

#include <algorithm>
#include <utility>

#include "base/error.h"

namespace rwkv {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i)
    if (stops_[i].empty()) throw Error("stop string " + std::to_string(i) + " is empty");
}

StopMatcher::Step StopMatcher::push(std::string_view piece) {
  if (stopped_) return {"", true, stop_};
  std::string text = std::move(held_);
  held_.clear();
  text += piece;

  // The stop string that ends first (then starts first). Held text holds no whole stop
  // string, so a match ends in the new piece; searching all of `text` finds those that
  // began in the held part.
  size_t best_end = std::string::npos, best_start = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = text.find(stops_[i]);
    if (at == std::string::npos) continue;
    const size_t end = at + stops_[i].size();
    if (end < best_end || (end == best_end && at < best_start)) {
      best_end = end;
      best_start = at;
      stop_ = i;
    }
  }
  if (best_end != std::string::npos) {
    stopped_ = true;
    text.resize(best_start);
    return {std::move(text), true, stop_};
  }

  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t longest = 1;
  for (const std::string& s : stops_) longest = std::max(longest, s.size());
  for (size_t k = std::min(text.size(), longest - 1); k > 0; --k) {
    const std::string_view tail = std::string_view(text).substr(text.size() - k);
    if (std::any_of(stops_.begin(), stops_.end(), [&](const std::string& s) { return s.starts_with(tail); })) {
      held_ = tail;
      text.resize(text.size() - k);
      break;
    }
  }
  return {std::move(text), false, 0};
}

std::string StopMatcher::finish() { return std::exchange(held_, std::string()); }

}  // namespace rwkv
