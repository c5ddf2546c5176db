#include "text/options.h"

#include <cmath>
#include <sstream>

#include "base/error.h"

namespace rwkv {

std::string option_message(const char* name, const char* openai, const std::string& what) {
  return std::string(name) + " " + what + (*openai ? std::string(" (") + openai + ")" : std::string());
}

void check_option(const char* name, const char* openai, double v, double min, double max, const char* range) {
  if (std::isfinite(v) && v >= min && v <= max) return;
  std::ostringstream got;
  got << v;
  throw Error(option_message(name, openai, std::string("must be ") + range) + ", got " + got.str());
}

}  // namespace rwkv
