#pragma once
// A value from the input quoted in a message goes through excerpt(): a huge value (a 10 MB
// string in a config) never makes a huge message. Cuts at a UTF-8 character boundary and
// says how long the whole value was.
#include <cstddef>
#include <string>
#include <string_view>

namespace llmpi {

inline constexpr size_t kExcerptBytes = 80;

// `s` itself when it has at most `max` bytes, else its first bytes followed by
// "... (N bytes)".
inline std::string excerpt(std::string_view s, size_t max = kExcerptBytes) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // a continuation byte
  return std::string(s.substr(0, n)) + "... (" + std::to_string(s.size()) + " bytes)";
}

}  // namespace llmpi
