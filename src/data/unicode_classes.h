#pragma once
// The character classes of GPT-2's pre-tokenization regex, by code point: letter (\p{L}),
// number (\p{N}), space (\s = the White_Space property) or other. ASCII is decided in code,
// the rest by binary search in generated ranges (unicode_classes.cpp, from
// scripts/gen-unicode-classes.js; the Unicode version is kUnicodeVersion).
#include <cstddef>
#include <cstdint>

namespace llmpi {

enum class CharClass : uint8_t { other, letter, number, space };

namespace unicode_tables {
inline constexpr CharClass kLetter = CharClass::letter, kNumber = CharClass::number,
                           kSpace = CharClass::space;
struct UnicodeRange {
  uint32_t first, last;
  CharClass cls;
};
extern const UnicodeRange kRanges[];
extern const size_t kRangeCount;
extern const char* const kUnicodeVersion;
}  // namespace unicode_tables

CharClass char_class(uint32_t cp);

}  // namespace llmpi
