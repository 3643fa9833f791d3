// Pre-tokenization by byte classes; see pretokenize.h for the rules.
#include "data/pretokenize.h"

#include <cstdint>

namespace llmpi {

namespace {

enum class Cls : uint8_t { letter, digit, space, other };

constexpr Cls classify(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return Cls::letter;
  if (c >= '0' && c <= '9') return Cls::digit;
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
    return Cls::space;
  return Cls::other;
}

Cls cls_at(std::string_view t, size_t i) { return classify(static_cast<unsigned char>(t[i])); }

// Length of an English contraction suffix ('s 't 're 've 'm 'll 'd) at pos, or 0.
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

// End of the run of class c starting at i.
size_t run_end(std::string_view t, size_t i, Cls c) {
  while (i < t.size() && cls_at(t, i) == c) ++i;
  return i;
}

}  // namespace

size_t chunk_length(std::string_view t, size_t pos) {
  if (const size_t k = contraction_length(t, pos)) return k;
  const Cls c = cls_at(t, pos);
  if (c != Cls::space) return run_end(t, pos, c) - pos;
  // A single ' ' followed by a non-space run: the space leads that run.
  if (t[pos] == ' ' && pos + 1 < t.size() && cls_at(t, pos + 1) != Cls::space) {
    const Cls next = cls_at(t, pos + 1);
    return run_end(t, pos + 1, next) - pos;
  }
  const size_t end = run_end(t, pos, Cls::space);
  if (end == t.size() || end - pos == 1) return end - pos;
  // Whitespace run followed by a non-space: leave its last character for the next chunk
  // (a ' ' there joins the following word; any other whitespace becomes its own chunk).
  return end - 1 - pos;
}

}  // namespace llmpi
