// GPT-2's pre-tokenization over UTF-8 bytes; see gpt2_pretokenize.h for the rules.
#include "data/gpt2_pretokenize.h"

#include <cstdint>

#include "data/unicode_classes.h"

namespace llmpi {

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::letter;
    if (cp >= '0' && cp <= '9') return CharClass::number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::space;
    return CharClass::other;
  }
  using unicode_tables::kRanges;
  size_t lo = 0, hi = unicode_tables::kRangeCount;
  while (lo < hi) {  // first range with last >= cp
    const size_t mid = (lo + hi) / 2;
    if (kRanges[mid].last < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < unicode_tables::kRangeCount && kRanges[lo].first <= cp ? kRanges[lo].cls
                                                                       : CharClass::other;
}

namespace {

struct Char {
  CharClass cls;
  size_t len;  // bytes
};

// The character at t[i]: a valid UTF-8 sequence (shortest form, no surrogates, <= U+10FFFF)
// or one invalid byte, classed "other".
Char char_at(std::string_view t, size_t i) {
  const auto u = [&](size_t k) { return static_cast<unsigned char>(t[k]); };
  const unsigned char c = u(i);
  if (c < 0x80) return {char_class(c), 1};
  size_t len = 0;
  uint32_t cp = 0, min = 0;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
  else return {CharClass::other, 1};
  if (i + len > t.size()) return {CharClass::other, 1};
  for (size_t k = 1; k < len; ++k) {
    if ((u(i + k) & 0xC0) != 0x80) return {CharClass::other, 1};
    cp = (cp << 6) | (u(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {CharClass::other, 1};
  return {char_class(cp), len};
}

size_t contraction_length(std::string_view t, size_t pos) {
  if (t[pos] != '\'' || pos + 1 >= t.size()) return 0;
  const char a = t[pos + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 < t.size()) {
    const char b = t[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

// End of the run of class `cls` that starts at i; *last_start = start of its last character.
size_t run_end(std::string_view t, size_t i, CharClass cls, size_t* last_start = nullptr) {
  while (i < t.size()) {
    const Char ch = char_at(t, i);
    if (ch.cls != cls) break;
    if (last_start) *last_start = i;
    i += ch.len;
  }
  return i;
}

}  // namespace

size_t gpt2_chunk_length(std::string_view t, size_t pos) {
  if (const size_t k = contraction_length(t, pos)) return k;
  const Char first = char_at(t, pos);
  if (t[pos] == ' ' && pos + 1 < t.size()) {  // " ?X+" with the space
    const Char next = char_at(t, pos + 1);
    if (next.cls != CharClass::space) return run_end(t, pos + 1, next.cls) - pos;
  }
  if (first.cls != CharClass::space) return run_end(t, pos, first.cls) - pos;
  size_t last = pos;
  const size_t end = run_end(t, pos, CharClass::space, &last);
  if (end == t.size() || last == pos) return end - pos;  // \s+ to the end, or one character
  return last - pos;                                      // \s+(?!\S): leave the last one
}

}  // namespace llmpi
