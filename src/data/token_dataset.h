#pragma once
// TokenDataset: one or more token shards read as one concatenated token sequence
// (shard order as given). Global token index g lives in the shard whose [offset, offset+size)
// contains it. Shards stay memory-mapped; copy() gathers a range across shard boundaries.
// content_hash() identifies the token sequence (not the file layout) for checkpoint metadata:
// it is the same whether the tokens sit in one shard or many, and in 2- or 4-byte width.
// Fine-tuning data (version 3 shards): documents never span shards, so the global document
// starts are each shard's, shifted by the shard's offset; the loss mask concatenates likewise.
// Shards that record a tokenizer identity must all record the same one (UserError naming two
// that differ); tokenizer() is that identity when every shard records it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/token_shard.h"

namespace llmpi {

class TokenDataset {
 public:
  // vocab_size > 0 validates every token of every shard against it.
  explicit TokenDataset(const std::vector<std::string>& paths, int64_t vocab_size = 0);

  int64_t size() const { return total_; }
  const std::vector<TokenShard>& shards() const { return shards_; }
  // Copies global tokens [begin, begin + count) into out.
  void copy(int64_t begin, int64_t count, int32_t* out) const;
  // Every shard records documents (version 2) / a loss mask.
  bool has_documents() const;
  bool has_loss_mask() const;
  // Global start of every document, then size(); a shard without documents counts as one.
  std::vector<int64_t> document_offsets() const;
  // out[k] = loss mask of global token begin + k (1 where a shard has no mask).
  void copy_mask(int64_t begin, int64_t count, uint8_t* out) const;
  // "a.bin (1000 tokens), b.bin (20 tokens)" for error messages.
  std::string describe() const;
  // The tokenizer identity of every shard; nullopt when a shard records none (an older or an
  // llm.c shard: callers warn).
  std::optional<TokenizerId> tokenizer() const;
  // Streaming 64-bit hash of all tokens (docs/data-format.md); computed once, then cached.
  uint64_t content_hash() const;

 private:
  std::vector<TokenShard> shards_;
  std::vector<int64_t> offsets_;  // offsets_[i] = first global index of shard i
  // Calls f(shard, local begin, count) for each shard's part of global tokens [begin, begin + count).
  template <class F>
  void for_each_piece(int64_t begin, int64_t count, F&& f) const;
  size_t shard_of(int64_t begin) const;  // the last shard whose offset <= begin
  int64_t total_ = 0;
  mutable std::optional<uint64_t> hash_;
};

// The hash of a token sequence, in the streaming form that content_hash() uses.
class TokenHasher {
 public:
  void update(const uint32_t* tokens, int64_t n);
  uint64_t finish() const;

 private:
  uint64_t lane_[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                       0x082EFA98EC4E6C89ull};
  int64_t count_ = 0;
};

}  // namespace llmpi
