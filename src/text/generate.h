#pragma once
// The generation loop: prefill the prompt, then sample + step until a stop condition,
// delivering text piece by piece. Pull-based: each next() does one token, so a caller
// (the JS worker) can yield, stream and abort between tokens. The order of the steps and
// the stop rules: docs/sampling.md#the-generation-loop.
#include <optional>
#include <string>
#include <vector>

#include "model/runner.h"
#include "text/grammar_matcher.h"
#include "text/sampler.h"
#include "text/textstream.h"
#include "text/tokenizer.h"

namespace rwkv {

// Defaults and ranges: the options schema (text/options.h, js/options.mjs).
struct GenerateOptions {
  SamplerOptions sampler;
  int max_tokens = int(option_defaults::generate_max_tokens);  // tokens to generate at most
  std::vector<int32_t> stop_tokens;       // ids that end generation (not emitted, not fed)
  std::vector<std::string> stop_strings;  // end generation when the text contains one (not emitted)
  bool stop_at_end_of_text = true;        // token 0 ends generation
  // A grammar (docs/grammar.md) the generated text must match; empty: none. Tokens it
  // does not allow next are masked before sampling; end of text (token 0, when it ends
  // generation) only where the grammar may end; generation stops where it has ended.
  std::string grammar;
  // Record a trace of every token fed, prompt included (docs/inspect.md): after each
  // next(), Generator::trace() holds the records of the tokens it fed.
  bool trace = option_defaults::generate_trace;
  void validate(size_t vocab) const;      // throws rwkv::Error naming the bad option
};

// Grammar: the grammar has ended (the text is a complete match and nothing may follow).
// MaxTokensIncomplete: max_tokens was reached while the grammar could not end there, so
// the text is cut short (a JSON document left open, say); MaxTokens is used otherwise.
enum class StopReason { None, MaxTokens, EndOfText, StopToken, StopString, Grammar, MaxTokensIncomplete };
// "max_tokens", "end_of_text", "stop_token", "stop", "grammar", "max_tokens_incomplete"
const char* stop_reason_name(StopReason r);

class Generator {
 public:
  // Feeds `prompt` (at least one token) to `state` by parallel prefill on the first
  // next(). Throws rwkv::Error for an empty prompt, ids out of range, bad options or a
  // grammar that does not parse.
  // The runner, state and tokenizer must outlive the generator.
  Generator(Runner& runner, State& state, const Tokenizer& tokenizer, std::vector<int32_t> prompt,
            GenerateOptions options);

  struct Piece {
    std::string text;      // text released by this token (may be empty: held back)
    int32_t token = -1;    // the token sampled, -1 when none
    bool done = false;
    StopReason reason = StopReason::None;
  };
  // While the prompt is being fed: feeds the next slice of at most kPrefillSlice prompt
  // tokens and returns an empty piece (token -1), so callers can abort between slices.
  // Then: samples one token, feeds it to the state (so the state always matches the
  // tokens generated so far) and returns the text it completes. After done, returns done.
  Piece next();
  bool prefilling() const { return fed_ < prompt_.size(); }
  static constexpr size_t kPrefillSlice = 256;
  // Text still held back (an incomplete UTF-8 tail or a partial stop-string match):
  // the caller appends it when it ends the generation early.
  std::string finish();

  int generated() const { return generated_; }
  // With a grammar: the text so far is a complete match (false without one).
  bool grammar_complete() const { return grammar_ && grammar_->can_end(); }
  // With the trace option: the records of the tokens the last next() fed (a prompt slice,
  // or the token it generated; none when it stopped without feeding one). Else null.
  const Trace* trace() const { return trace_ ? &*trace_ : nullptr; }

 private:
  StopReason max_tokens_reason() const;

  Runner& runner_;
  State& state_;
  const Tokenizer& tokenizer_;
  std::vector<int32_t> prompt_;
  GenerateOptions options_;
  Sampler sampler_;
  Utf8Stream utf8_;
  StopMatcher stops_;
  std::optional<GrammarMatcher> grammar_;
  std::optional<Trace> trace_;
  std::vector<float> logits_;  // (V) logits to sample the next token from
  size_t fed_ = 0;  // prompt tokens fed so far
  bool done_ = false;
  bool flushed_ = false;
  StopReason reason_ = StopReason::None;
  int generated_ = 0;
};

}  // namespace rwkv
