#pragma once
// Document cleaning and exact deduplication for `llmpi prepare`.
// clean_text: "\r\n" and lone "\r" → "\n"; control characters other than \n and \t are
// dropped (C0 bytes 0x00-0x1F, DEL 0x7F, and the C1 range U+0080-U+009F when encoded as
// valid UTF-8 "\xC2\x80".."\xC2\x9F"); leading/trailing spaces, tabs and newlines are trimmed.
// Other bytes — including invalid UTF-8 — are kept: the tokenizer is byte-level.
// Length filters count Unicode code points (bytes that are not UTF-8 continuation bytes).
// Dedup keys are 128-bit content hashes: with n documents the collision probability is about
// n^2 / 2^129 (< 1e-20 for 10^9 documents), so a false "duplicate" is never seen in practice.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace llmpi {

std::string clean_text(std::string_view raw);
int64_t count_code_points(std::string_view utf8);

struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};
// Two independent 64-bit streams over the bytes (SplitMix64-mixed 8-byte words + length).
Hash128 content_hash128(std::string_view bytes);

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo); }
};

struct CleanStats {
  int64_t documents_read = 0;
  int64_t dropped_short = 0;      // fewer than min_chars code points after cleaning
  int64_t dropped_duplicate = 0;  // identical (after cleaning) to an earlier document
  int64_t kept = 0;
};

// Cleans, length-filters and deduplicates a stream of documents, in order.
class DocumentFilter {
 public:
  explicit DocumentFilter(int64_t min_chars) : min_chars_(min_chars) {}
  // Cleans raw into *out; returns true if the document is kept (first of its content).
  bool accept(std::string_view raw, std::string* out);
  const CleanStats& stats() const { return stats_; }

 private:
  int64_t min_chars_;
  CleanStats stats_;
  std::unordered_set<Hash128, Hash128Hasher> seen_;
};

}  // namespace llmpi
