#pragma once
// The generation options as the one options schema (js/options.mjs) defines them: the
// build turns that table into rwkv_options.h (scripts/options-header.mjs), whose
// X-macros give each option's struct field, library and OpenAI names, default and range.
// SamplerOptions and GenerateOptions take their defaults from it, and their validate()
// and the bindings check ranges with check_option, so every layer agrees by construction.
#include <string>

#include "rwkv_options.h"

namespace rwkv {

// Throws rwkv::Error "<name> must be <range> (<openai>), got <v>" unless min <= v <= max
// and v is finite (NaN included).
void check_option(const char* name, const char* openai, double v, double min, double max, const char* range);

// "<name> <what> (<openai>)", or without the parentheses when the option has no other
// name: an error message about an option, e.g. "topK must be a number (top_k)".
std::string option_message(const char* name, const char* openai, const std::string& what);

}  // namespace rwkv
