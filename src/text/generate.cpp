#include "text/generate.h"

#include <algorithm>
#include <cmath>

namespace rwkv {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::EndOfText: return "end_of_text";
    case StopReason::StopToken: return "stop_token";
    case StopReason::StopString: return "stop";
    case StopReason::Grammar: return "grammar";
    case StopReason::MaxTokensIncomplete: return "max_tokens_incomplete";
    case StopReason::None: break;
  }
  return "none";
}

void GenerateOptions::validate(size_t vocab) const {
  sampler.validate(vocab);
#define RWKV_CHECK(field, name, openai, min, max, range) check_option(name, openai, double(field), min, max, range);
  RWKV_GENERATE_NUMERIC(RWKV_CHECK)
#undef RWKV_CHECK
  for (int32_t t : stop_tokens)
    if (t < 0 || size_t(t) >= vocab)
      throw Error("stop token " + std::to_string(t) + " is out of range for a vocabulary of " + std::to_string(vocab));
  for (const auto& s : stop_strings)
    if (s.empty()) throw Error("stop strings must not be empty");
}

Generator::Generator(Runner& runner, State& state, const Tokenizer& tokenizer, std::vector<int32_t> prompt,
                     GenerateOptions options)
    : runner_(runner),
      state_(state),
      tokenizer_(tokenizer),
      prompt_(std::move(prompt)),
      options_(std::move(options)),
      sampler_(options_.sampler, size_t(runner.model().config().V)),
      stops_(options_.stop_strings) {
  const size_t V = size_t(runner.model().config().V);
  options_.validate(V);
  if (prompt_.empty()) throw Error("the prompt is empty: generation needs at least one token to start from");
  for (int32_t t : prompt_)
    if (t < 0 || size_t(t) >= V)
      throw Error("prompt token " + std::to_string(t) + " is out of range for a vocabulary of " + std::to_string(V));
  if (options_.trace) trace_.emplace(runner.model().config());
  if (!options_.grammar.empty())
    grammar_.emplace(Grammar::parse(options_.grammar),
                     std::make_shared<TokenTrie>(tokenizer_, V, options_.stop_at_end_of_text ? 0 : -1));
}

StopReason Generator::max_tokens_reason() const {
  return grammar_ && !grammar_->can_end() ? StopReason::MaxTokensIncomplete : StopReason::MaxTokens;
}

namespace {
// Gives the runner the generator's trace (or none) for the length of one next().
struct TraceScope {
  TraceScope(Runner& r, Trace* t) : runner(r) {
    if (t) t->clear();
    runner.set_trace(t);
  }
  ~TraceScope() { runner.set_trace(nullptr); }
  Runner& runner;
};
}  // namespace

Generator::Piece Generator::next() {
  Piece p;
  const TraceScope scope(runner_, trace_ ? &*trace_ : nullptr);
  if (prefilling()) {
    const size_t n = std::min(kPrefillSlice, prompt_.size() - fed_);
    auto l = runner_.prefill(state_, std::span<const int32_t>(prompt_).subspan(fed_, n));
    fed_ += n;
    if (!prefilling()) logits_.assign(l.begin(), l.end());
    return p;
  }
  if (done_) {
    p.done = true;
    p.reason = reason_;
    return p;
  }
  auto finish_with = [&](StopReason r) {
    done_ = true;
    reason_ = r;
    p.done = true;
    p.reason = r;
    return p;
  };
  if (grammar_ && grammar_->ended()) return finish_with(StopReason::Grammar);
  if (generated_ >= options_.max_tokens) return finish_with(max_tokens_reason());

  if (grammar_) grammar_->mask(logits_);
  const int32_t token = sampler_.sample(logits_);
  p.token = token;
  if (token == 0 && options_.stop_at_end_of_text) return finish_with(StopReason::EndOfText);
  if (std::find(options_.stop_tokens.begin(), options_.stop_tokens.end(), token) != options_.stop_tokens.end())
    return finish_with(StopReason::StopToken);
  if (grammar_) grammar_->accept(token);
  sampler_.accept(token);
  ++generated_;
  auto l = runner_.step(state_, token);
  logits_.assign(l.begin(), l.end());

  auto r = stops_.push(utf8_.push(tokenizer_.token_bytes(token)));
  p.text = std::move(r.text);
  if (r.stopped) return finish_with(StopReason::StopString);
  if (grammar_ && grammar_->ended()) {
    p.text += finish();
    return finish_with(StopReason::Grammar);
  }
  if (generated_ >= options_.max_tokens) {
    p.text += finish();
    return finish_with(max_tokens_reason());
  }
  return p;
}

std::string Generator::finish() {
  if (flushed_) return {};
  flushed_ = true;
  if (reason_ == StopReason::StopString) return {};  // what follows a stop string is dropped
  auto r = stops_.push(utf8_.flush());
  return r.stopped ? r.text : r.text + stops_.finish();
}

}  // namespace rwkv
