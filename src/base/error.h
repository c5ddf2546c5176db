#pragma once
#include <stdexcept>
#include <string>
namespace rwkv {
// Every failure the core reports: a message meant for the user (names the key, file position or argument at fault).
struct Error : std::runtime_error { using std::runtime_error::runtime_error; };
}
