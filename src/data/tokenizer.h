#pragma once
// Byte-level BPE tokenizer. Ids: 0..255 are the raw bytes; 256 + i is the i-th merge
// (a pair of earlier ids, whose bytes it concatenates); the last id, 256 + n_merges, is the
// special token "<|endoftext|>". vocab_size() = 257 + n_merges.
// encode() pre-tokenizes (pretokenize.h) and applies merges inside each chunk in merge order
// (lowest merge index first, like GPT-2). It never emits the end-of-text id — text that
// happens to contain "<|endoftext|>" is encoded as ordinary bytes, so documents cannot inject
// boundaries — and decode(encode(s)) == s for every byte string s (NULs, invalid UTF-8).
// Files: a versioned text format, see docs/data-format.md; train with BpeTrainer.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llmpi {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

struct BpeMerge {
  uint32_t left = 0, right = 0;  // ids of earlier tokens; the merge creates 256 + its index
};

// Memo of chunk → ids for one encoding pass over a corpus (chunks repeat a lot).
struct EncodeCache {
  std::unordered_map<std::string, std::vector<uint32_t>> map;
  size_t max_entries = size_t{1} << 20;  // cleared when full, so memory stays bounded
};

class Tokenizer {
 public:
  Tokenizer();  // no merges: vocab = 256 bytes + end-of-text
  explicit Tokenizer(std::vector<BpeMerge> merges);

  int64_t vocab_size() const { return 257 + static_cast<int64_t>(merges_.size()); }
  uint32_t eot_id() const { return 256 + static_cast<uint32_t>(merges_.size()); }
  const std::vector<BpeMerge>& merges() const { return merges_; }

  std::vector<uint32_t> encode(std::string_view text) const;
  // Appends the ids of text to out; cache (optional) memoizes chunk encodings.
  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     EncodeCache* cache = nullptr) const;
  std::string decode(const std::vector<uint32_t>& ids) const;  // UserError on id >= vocab
  const std::string& token_bytes(uint32_t id) const;          // bytes of one token

  void save(const std::string& path) const;  // atomic: "<path>.tmp" then rename
  static Tokenizer load(const std::string& path);  // UserError naming file:line

 private:
  void encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const;
  std::vector<BpeMerge> merges_;
  std::unordered_map<uint64_t, uint32_t> rank_;  // (left << 32 | right) → merge index
  std::vector<std::string> bytes_;               // id → its bytes
};

}  // namespace llmpi
