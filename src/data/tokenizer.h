#pragma once
// Byte-level BPE tokenizers: llmpi's own and GPT-2's, one class. A vocabulary maps ids to
// byte strings; a ranked merge list says which adjacent pair of tokens joins first; a
// pre-tokenizer cuts text into chunks that merges never cross; special tokens (at least
// "<|endoftext|>") have ids but are never produced by encode().
//   llmpi (Pretokenizer::llmpi_bytes, pretokenize.h): ids 0..255 are the raw bytes, 256 + i
//     is merge i, the last id (256 + M) is "<|endoftext|>"; vocab_size = 257 + M.
//   GPT-2 (Pretokenizer::gpt2, gpt2_pretokenize.h): ids in any order (vocab.json), merges by
//     rank (merges.txt), "<|endoftext|>" = 50256 — data/hf_tokenizer.h reads and writes them.
// encode() applies, inside each chunk, the lowest-ranked adjacent merge first, all its
// occurrences left to right (GPT-2's reference algorithm). Text that contains
// "<|endoftext|>" is encoded as ordinary text, so documents cannot inject boundaries, and
// decode(encode(s)) == s for every byte string s (NULs, invalid UTF-8).
// Invariants (checked on construction; UserError naming `source`): ids are dense; every byte
// has a one-byte token; merge r joins tokens that are bytes or results of merges < r, and its
// result's bytes are the pair's bytes concatenated; no pair or result appears twice.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llmpi {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

enum class Pretokenizer : uint8_t { llmpi_bytes, gpt2 };
const char* pretokenizer_name(Pretokenizer p);  // "llmpi-bytes" | "gpt2"

struct BpeMerge {
  uint32_t left = 0, right = 0;  // ids of the joined tokens
  uint32_t result = 0;           // id of the new token (llmpi: 256 + rank, set by Tokenizer)
};

// A whole vocabulary: what files hold (data/hf_tokenizer.h builds it from HF files).
struct BpeVocab {
  std::vector<std::string> tokens;  // id → bytes (a special token: its text)
  std::vector<BpeMerge> merges;     // by rank
  std::vector<uint32_t> specials;   // ids of special tokens, "<|endoftext|>" among them
  Pretokenizer pretokenizer = Pretokenizer::gpt2;
};

// Memo of chunk → ids for one encoding pass over a corpus (chunks repeat a lot).
struct EncodeCache {
  std::unordered_map<std::string, std::vector<uint32_t>> map;
  size_t max_entries = size_t{1} << 20;  // cleared when full, so memory stays bounded
};

class Tokenizer {
 public:
  Tokenizer();  // llmpi, no merges: vocab = 256 bytes + end-of-text
  explicit Tokenizer(std::vector<BpeMerge> merges);  // llmpi: merge i creates 256 + i
  // Any byte-level BPE; `source` names the files in error messages.
  Tokenizer(BpeVocab vocab, const std::string& source);

  int64_t vocab_size() const { return static_cast<int64_t>(bytes_.size()); }
  uint32_t eot_id() const { return eot_; }
  Pretokenizer pretokenizer() const { return pre_; }
  const std::vector<BpeMerge>& merges() const { return merges_; }
  const std::vector<uint32_t>& specials() const { return specials_; }
  bool is_special(uint32_t id) const;
  // True if ids follow llmpi's layout (bytes, then merges in rank order, then end-of-text),
  // which the llmpi file format (save/load) requires.
  bool has_llmpi_layout() const;

  std::vector<uint32_t> encode(std::string_view text) const;
  // Appends the ids of text to out; cache (optional) memoizes chunk encodings.
  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     EncodeCache* cache = nullptr) const;
  std::string decode(const std::vector<uint32_t>& ids) const;  // UserError on id >= vocab
  const std::string& token_bytes(uint32_t id) const;          // bytes of one token
  uint32_t byte_id(unsigned char b) const { return byte_id_[b]; }

  // The llmpi tokenizer file (docs/data-format.md); save needs has_llmpi_layout().
  void save(const std::string& path) const;  // atomic: "<path>.tmp" then rename
  static Tokenizer load(const std::string& path);  // UserError naming file:line

 private:
  void index(const std::string& source);
  void encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const;
  Pretokenizer pre_ = Pretokenizer::llmpi_bytes;
  std::vector<BpeMerge> merges_;
  std::vector<std::string> bytes_;  // id → its bytes
  std::vector<uint32_t> specials_;
  uint32_t eot_ = 0;
  uint32_t byte_id_[256] = {};
  // (left << 32 | right) → (rank << 32 | result)
  std::unordered_map<uint64_t, uint64_t> rank_;
};

}  // namespace llmpi
