// Token shards: header parsing/validation for both formats, bulk reads that widen to int32,
// and the streaming writer. Little-endian on disk; every supported host is little-endian
// (x86-64, AArch64, ppc64le), which the static_assert below pins down.
#include "data/token_shard.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace llmpi {

static_assert(std::endian::native == std::endian::little,
              "token shards are little-endian; add byte swapping for big-endian hosts");

namespace {

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

int token_width_for_vocab(int64_t vocab_size) {
  LLMPI_CHECK(vocab_size > 0, "vocab_size = ", vocab_size);
  return vocab_size <= 65536 ? 2 : 4;
}

TokenShard::TokenShard(const std::string& path, int64_t vocab_size) : file_(path) {
  const uint8_t* d = file_.data();
  const size_t n = file_.size();
  if (n >= sizeof(kShardMagic) && std::memcmp(d, kShardMagic, sizeof(kShardMagic)) == 0) {
    format_ = ShardFormat::llmpi;
    if (n < kShardV1HeaderBytes)
      user_error(path, ": truncated header (", n, " bytes, expected at least ",
                 kShardV1HeaderBytes, ")");
    const uint32_t version = load<uint32_t>(d + 8);
    if (version != 1 && version != kShardVersion)
      user_error(path, ": unsupported token shard version ", version, " (expected 1 or ",
                 kShardVersion, ")");
    const size_t header = version == 1 ? kShardV1HeaderBytes : kShardHeaderBytes;
    if (n < header)
      user_error(path, ": truncated header (", n, " bytes, expected at least ", header, ")");
    const uint32_t width = load<uint32_t>(d + 12);
    if (width != 2 && width != 4)
      user_error(path, ": bad token width ", width, " (expected 2 or 4 bytes)");
    width_ = static_cast<int>(width);
    if (version >= 2) {
      TokenizerId id{load<uint64_t>(d + 24), load<int64_t>(d + 32), load<uint32_t>(d + 40)};
      if (id.vocab_size <= 0 || id.eot_id >= uint64_t(id.vocab_size))
        user_error(path, ": bad tokenizer identity in the header (vocab_size ", id.vocab_size,
                   ", eot_id ", id.eot_id, ")");
      tokenizer_ = id;
    }
    const uint64_t count = load<uint64_t>(d + 16);
    const uint64_t payload = n - header;
    if (count > payload / width_ || count * width_ != payload) {
      // The header's size without wrapping: a count near 2^64 overflows count * width.
      const bool huge = count > (UINT64_MAX - header) / uint64_t(width_);
      user_error(path, ": size mismatch: header says ", count, " tokens of ", width_, " bytes (",
                 huge ? std::string("more than 2^64") : std::to_string(header + count * width_),
                 " bytes) but the file has ", n, " bytes",
                 count > payload / width_ ? " (truncated?)" : "");
    }
    count_ = static_cast<int64_t>(count);
    tokens_ = d + header;
  } else if (n >= sizeof(int32_t) && load<int32_t>(d) == kLlmcMagic) {
    format_ = ShardFormat::llmc;
    width_ = 2;
    if (n < kLlmcHeaderBytes)
      user_error(path, ": truncated llm.c header (", n, " bytes, expected ", kLlmcHeaderBytes,
                 ")");
    const int32_t version = load<int32_t>(d + 4);
    if (version != kLlmcVersion)
      user_error(path, ": unsupported llm.c shard version ", version, " (expected ",
                 kLlmcVersion, " = uint16 tokens)");
    const int32_t count = load<int32_t>(d + 8);
    if (count < 0) user_error(path, ": negative token count ", count, " in llm.c header");
    const uint64_t expect = kLlmcHeaderBytes + 2ull * static_cast<uint64_t>(count);
    if (expect != n)
      user_error(path, ": size mismatch: llm.c header says ", count, " uint16 tokens (",
                 expect, " bytes) but the file has ", n, " bytes",
                 expect > n ? " (truncated?)" : "");
    count_ = count;
    tokens_ = d + kLlmcHeaderBytes;
  } else if (n < sizeof(kShardMagic)) {
    user_error(path, ": not a token shard: file too short (", n, " bytes) for a header");
  } else {
    user_error(path, ": not a token shard: bad magic (expected \"LLMPITOK\" or llm.c's ",
               kLlmcMagic, ")");
  }

  if (vocab_size > 0) {
    // One streaming pass; reports the first offending token.
    std::vector<uint32_t> buf(1 << 16);
    for (int64_t begin = 0; begin < count_; begin += static_cast<int64_t>(buf.size())) {
      const int64_t k = std::min<int64_t>(static_cast<int64_t>(buf.size()), count_ - begin);
      read(begin, k, buf.data());
      for (int64_t i = 0; i < k; ++i)
        if (buf[i] >= static_cast<uint64_t>(vocab_size))
          user_error(path, ": token ", buf[i], " at index ", begin + i,
                     " is out of range for vocabulary size ", vocab_size);
    }
  }
}

uint32_t TokenShard::operator[](int64_t i) const {
  LLMPI_CHECK(i >= 0 && i < count_, "token index ", i, " of ", count_);
  return width_ == 2 ? load<uint16_t>(tokens_ + 2 * i) : load<uint32_t>(tokens_ + 4 * i);
}

template <class T>
void TokenShard::read_as(int64_t begin, int64_t count, T* out) const {
  LLMPI_CHECK(begin >= 0 && count >= 0 && begin + count <= count_, "range [", begin, ", ",
              begin + count, ") of ", count_, " tokens in ", path());
  if (width_ == 2) {
    const uint8_t* p = tokens_ + 2 * begin;
    for (int64_t i = 0; i < count; ++i) out[i] = static_cast<T>(load<uint16_t>(p + 2 * i));
  } else {
    const uint8_t* p = tokens_ + 4 * begin;
    for (int64_t i = 0; i < count; ++i) out[i] = static_cast<T>(load<uint32_t>(p + 4 * i));
  }
}

void TokenShard::read(int64_t begin, int64_t count, int32_t* out) const {
  read_as(begin, count, out);
}
void TokenShard::read(int64_t begin, int64_t count, uint32_t* out) const {
  read_as(begin, count, out);
}

// ---- writer -------------------------------------------------------------------------------

TokenShardWriter::TokenShardWriter(std::string path, int width, std::optional<TokenizerId> tokenizer)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), width_(width) {
  LLMPI_CHECK(width == 2 || width == 4, "token width ", width);
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) user_error(tmp_path_, ": cannot create: ", std::strerror(errno));
  uint8_t header[kShardHeaderBytes] = {};
  std::memcpy(header, kShardMagic, 8);
  const uint32_t version = tokenizer ? kShardVersion : 1, w = static_cast<uint32_t>(width);
  std::memcpy(header + 8, &version, 4);
  std::memcpy(header + 12, &w, 4);  // count (bytes 16..24) is patched in commit()
  size_t header_bytes = kShardV1HeaderBytes;
  if (tokenizer) {
    std::memcpy(header + 24, &tokenizer->hash, 8);
    std::memcpy(header + 32, &tokenizer->vocab_size, 8);
    std::memcpy(header + 40, &tokenizer->eot_id, 4);
    header_bytes = kShardHeaderBytes;
  }
  write_bytes(header, header_bytes);
}

TokenShardWriter::~TokenShardWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void TokenShardWriter::write_bytes(const void* p, size_t n) {
  if (n == 0) return;  // p may be null for an empty span
  if (std::fwrite(p, 1, n, file_) != n)
    user_error(tmp_path_, ": write failed: ", std::strerror(errno));
}

void TokenShardWriter::append(std::span<const uint32_t> tokens) {
  LLMPI_CHECK(file_ != nullptr, "append after commit to ", path_);
  if (width_ == 4) {
    write_bytes(tokens.data(), tokens.size_bytes());
  } else {
    staging_.resize(2 * tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      LLMPI_CHECK(tokens[i] <= 0xFFFF, "token ", tokens[i], " does not fit 2 bytes");
      const uint16_t t = static_cast<uint16_t>(tokens[i]);
      std::memcpy(staging_.data() + 2 * i, &t, 2);
    }
    write_bytes(staging_.data(), staging_.size());
  }
  count_ += static_cast<int64_t>(tokens.size());
}

void TokenShardWriter::commit() {
  LLMPI_CHECK(file_ != nullptr, "double commit of ", path_);
  const uint64_t count = static_cast<uint64_t>(count_);
  if (std::fseek(file_, 16, SEEK_SET) != 0)
    user_error(tmp_path_, ": seek failed: ", std::strerror(errno));
  write_bytes(&count, sizeof(count));
  std::FILE* f = file_;
  file_ = nullptr;  // from here on the destructor does not delete: we handle failure below
  if (std::fclose(f) != 0) {
    std::remove(tmp_path_.c_str());
    user_error(tmp_path_, ": close failed: ", std::strerror(errno));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_path_.c_str());
    user_error(path_, ": cannot rename from ", tmp_path_, ": ", std::strerror(err));
  }
}

void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       int64_t vocab_size, std::optional<TokenizerId> tokenizer) {
  TokenShardWriter w(path, token_width_for_vocab(vocab_size), tokenizer);
  w.append(tokens);
  w.commit();
}

}  // namespace llmpi
