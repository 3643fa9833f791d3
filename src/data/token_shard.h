#pragma once
// Token shards: a flat array of token ids in a file (docs/data-format.md).
//  llmpi format: "LLMPITOK" | u32 version | u32 width (2|4 bytes) | u64 count | [identity] |
//                tokens | [trailer], all little-endian.
//    version 1: no identity, no trailer: file size == 24 + count * width exactly (still read).
//    version 2: identity = u64 tokenizer hash | u64 tokenizer vocab_size | u32 eot_id | u32 0
//               (tokenizer_id.h), a 48-byte header; file size == 48 + count * width exactly.
//    version 3 (fine-tuning data): version 2's 48-byte header (an all-zero identity: none
//               recorded), the tokens, then a trailer: zero padding to a multiple of 8 bytes |
//               "LLMPIDOC" | u64 flags (1: documents, 2: loss mask) | u64 documents D |
//               u64 offsets [D + 1] (token index of each document's start, then count) | loss
//               mask bits [ceil(count / 8)] (token i is bit i % 8 of byte i / 8, least
//               significant first; 1 = in the loss).
//  llm.c format: 256 x i32 header ([0]=20240520, [1]=1, [2]=count) | count x u16 tokens.
// TokenShard reads either (detected by magic) through a memory map; every malformed file is
// a UserError naming the file and the problem. TokenShardWriter writes ours to "<path>.tmp"
// and renames on commit(), so a failed write never leaves a half file under the final name.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/mapped_file.h"
#include "data/tokenizer_id.h"

namespace llmpi {

enum class ShardFormat : uint8_t { llmpi, llmc };
// What a written shard holds: tokens only (version 1), or documents (version 2) with or
// without a loss mask.
enum class ShardContent : uint8_t { tokens, documents, documents_with_mask };

inline constexpr char kShardMagic[8] = {'L', 'L', 'M', 'P', 'I', 'T', 'O', 'K'};
inline constexpr uint32_t kShardVersion = 2;           // tokens with the tokenizer identity
inline constexpr uint32_t kShardVersionDocuments = 3;  // ... and the document trailer
inline constexpr char kShardTrailerMagic[8] = {'L', 'L', 'M', 'P', 'I', 'D', 'O', 'C'};
inline constexpr uint64_t kShardHasDocuments = 1, kShardHasLossMask = 2;
inline constexpr size_t kShardHeaderBytes = 48;
inline constexpr size_t kShardV1HeaderBytes = 24;
inline constexpr int32_t kLlmcMagic = 20240520;
inline constexpr int32_t kLlmcVersion = 1;
inline constexpr size_t kLlmcHeaderBytes = 256 * sizeof(int32_t);

// The shard format the first n bytes of a file announce by their magic; nullopt for neither.
std::optional<ShardFormat> shard_format_of(const uint8_t* head, size_t n);

// Bytes per token for a vocabulary: 2 when every id fits in uint16, else 4.
int token_width_for_vocab(int64_t vocab_size);

class TokenShard {
 public:
  // vocab_size > 0 additionally checks that every token is < vocab_size (one pass).
  explicit TokenShard(const std::string& path, int64_t vocab_size = 0);

  int64_t size() const { return count_; }
  int width() const { return width_; }
  ShardFormat format() const { return format_; }
  const std::string& path() const { return file_.path(); }
  // The identity of the tokenizer that made the ids; nullopt for format 1 and llm.c shards.
  const std::optional<TokenizerId>& tokenizer() const { return tokenizer_; }

  uint32_t operator[](int64_t i) const;

  // Version 3 shards: document boundaries and the per-token loss mask.
  bool has_documents() const { return !doc_offsets_.empty(); }
  bool has_loss_mask() const { return mask_ != nullptr; }
  // Start of every document, then size() (D + 1 entries); {0, size()} without documents.
  std::vector<int64_t> document_offsets() const;
  // out[k] = loss mask of token begin + k (1 for every token of a shard without a mask).
  void read_mask(int64_t begin, int64_t count, uint8_t* out) const;
  // Copies tokens [begin, begin + count) into out (precondition: in range).
  void read(int64_t begin, int64_t count, int32_t* out) const;
  void read(int64_t begin, int64_t count, uint32_t* out) const;

 private:
  template <class T> void read_as(int64_t begin, int64_t count, T* out) const;
  MappedFile file_;
  const uint8_t* tokens_ = nullptr;
  int64_t count_ = 0;
  int width_ = 2;
  ShardFormat format_ = ShardFormat::llmpi;
  std::vector<int64_t> doc_offsets_;  // empty: no documents recorded (version 1, llm.c)
  const uint8_t* mask_ = nullptr;     // loss mask bits (version 2 with a mask)
  void read_trailer(size_t begin);
  std::optional<TokenizerId> tokenizer_;
};

class TokenShardWriter {
 public:
  // Opens "<path>.tmp" for writing tokens of `width` bytes (2 or 4) made by the tokenizer
  // `tokenizer`: version 2 (tokens) or 3 (documents); tokens without a tokenizer: version 1
  // (tests, tools that know no tokenizer).
  TokenShardWriter(std::string path, int width, std::optional<TokenizerId> tokenizer = {},
                   ShardContent content = ShardContent::tokens);
  TokenShardWriter(std::string path, int width, ShardContent content)
      : TokenShardWriter(std::move(path), width, std::nullopt, content) {}
  ~TokenShardWriter();  // without commit(): removes the temporary file
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // ShardContent::tokens (version 1 or 2): tokens, no document or mask information.
  void append(std::span<const uint32_t> tokens);
  // The documents kinds (version 3): one whole, non-empty document; mask: one 0/1 per token
  // with documents_with_mask, empty with documents.
  void append_document(std::span<const uint32_t> tokens, std::span<const uint8_t> mask);
  // Patches the count into the header, flushes, closes and renames to the final path.
  void commit();
  int64_t count() const { return count_; }

 private:
  void write_bytes(const void* p, size_t n);
  void write_tokens(std::span<const uint32_t> tokens);
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  int width_;
  size_t header_bytes_;
  int64_t count_ = 0;
  std::vector<uint8_t> staging_;
  ShardContent content_;
  std::vector<uint64_t> doc_offsets_{0};
  std::vector<uint8_t> mask_bits_;
};

// Writes a whole shard (atomically, through TokenShardWriter) with the width for vocab_size.
void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       int64_t vocab_size, std::optional<TokenizerId> tokenizer = {});

}  // namespace llmpi
