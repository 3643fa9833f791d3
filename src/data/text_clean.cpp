// Cleaning (one pass over the bytes), code-point counting, the 128-bit content hash and the
// streaming filter. See text_clean.h for the rules.
#include "data/text_clean.h"

#include <cstring>

#include "core/rng.h"

namespace llmpi {

std::string clean_text(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c == '\r') {
      out.push_back('\n');
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else if (c == '\n' || c == '\t') {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7F) {
      // C0 control or DEL: dropped
    } else if (c == 0xC2 && i + 1 < raw.size() &&
               static_cast<unsigned char>(raw[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(raw[i + 1]) <= 0x9F) {
      ++i;  // C1 control U+0080..U+009F: dropped
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  auto is_blank = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  size_t b = 0, e = out.size();
  while (b < e && is_blank(out[b])) ++b;
  while (e > b && is_blank(out[e - 1])) --e;
  return out.substr(b, e - b);
}

int64_t count_code_points(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Hash128 content_hash128(std::string_view s) {
  uint64_t h1 = 0x6A09E667F3BCC908ull, h2 = 0xBB67AE8584CAA73Bull;  // two fixed seeds
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h1 = splitmix64(h1 ^ w);
    h2 = splitmix64(h2 + (w ^ 0x9E3779B97F4A7C15ull));
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  h1 = splitmix64(h1 ^ tail ^ (uint64_t{s.size()} << 56));
  h2 = splitmix64(h2 + tail + s.size());
  return {splitmix64(h1 ^ s.size()), splitmix64(h2 ^ (s.size() * 0xD6E8FEB86659FD93ull))};
}

bool DocumentFilter::accept(std::string_view raw, std::string* out) {
  ++stats_.documents_read;
  *out = clean_text(raw);
  if (count_code_points(*out) < min_chars_ || out->empty()) {
    ++stats_.dropped_short;
    return false;
  }
  if (!seen_.insert(content_hash128(*out)).second) {
    ++stats_.dropped_duplicate;
    return false;
  }
  ++stats_.kept;
  return true;
}

}  // namespace llmpi
