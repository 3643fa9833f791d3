#pragma once
// Token shards: a flat array of token ids in a file (docs/data-format.md).
//  llmpi format 2: "LLMPITOK" | u32 version=2 | u32 width (2|4 bytes) | u64 count |
//                u64 tokenizer hash | u64 tokenizer vocab_size | u32 eot_id | u32 0 | tokens,
//                all little-endian; file size == 48 + count * width exactly. The tokenizer
//                fields are the identity of the tokenizer that made the ids (tokenizer_id.h).
//  llmpi format 1: the same without the tokenizer fields (24-byte header); still read.
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

inline constexpr char kShardMagic[8] = {'L', 'L', 'M', 'P', 'I', 'T', 'O', 'K'};
inline constexpr uint32_t kShardVersion = 2;
inline constexpr size_t kShardHeaderBytes = 48;
inline constexpr size_t kShardV1HeaderBytes = 24;
inline constexpr int32_t kLlmcMagic = 20240520;
inline constexpr int32_t kLlmcVersion = 1;
inline constexpr size_t kLlmcHeaderBytes = 256 * sizeof(int32_t);

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
  std::optional<TokenizerId> tokenizer_;
};

class TokenShardWriter {
 public:
  // Opens "<path>.tmp" for writing tokens of `width` bytes (2 or 4) made by the tokenizer
  // `tokenizer` (format 2); without one, format 1 (tests, tools that know no tokenizer).
  TokenShardWriter(std::string path, int width, std::optional<TokenizerId> tokenizer = {});
  ~TokenShardWriter();  // without commit(): removes the temporary file
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  void append(std::span<const uint32_t> tokens);
  // Patches the count into the header, flushes, closes and renames to the final path.
  void commit();
  int64_t count() const { return count_; }

 private:
  void write_bytes(const void* p, size_t n);
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  int width_;
  int64_t count_ = 0;
  std::vector<uint8_t> staging_;
};

// Writes a whole shard (atomically, through TokenShardWriter) with the width for vocab_size.
void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       int64_t vocab_size, std::optional<TokenizerId> tokenizer = {});

}  // namespace llmpi
