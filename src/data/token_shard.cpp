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
#include "core/text_file.h"

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

std::optional<ShardFormat> shard_format_of(const uint8_t* head, size_t n) {
  if (n >= sizeof(kShardMagic) && std::memcmp(head, kShardMagic, sizeof(kShardMagic)) == 0)
    return ShardFormat::llmpi;
  int32_t magic = 0;
  if (n >= sizeof magic && (std::memcpy(&magic, head, sizeof magic), magic == kLlmcMagic))
    return ShardFormat::llmc;
  return std::nullopt;
}

TokenShard::TokenShard(const std::string& path, int64_t vocab_size)
    : file_(path, "a token shard (.bin, from llmpi prepare)") {
  const uint8_t* d = file_.data();
  const size_t n = file_.size();
  const std::optional<ShardFormat> format = shard_format_of(d, n);
  if (format == ShardFormat::llmpi) {
    format_ = ShardFormat::llmpi;
    if (n < kShardV1HeaderBytes)
      user_error(path, ": truncated header (", n, " bytes, expected at least ",
                 kShardV1HeaderBytes, ")");
    const uint32_t version = load<uint32_t>(d + 8);
    if (version != 1 && version != kShardVersion && version != kShardVersionDocuments)
      user_error(path, ": unsupported token shard version ", version, " (expected 1, ",
                 kShardVersion, " or ", kShardVersionDocuments, ")");
    const size_t header = version == 1 ? kShardV1HeaderBytes : kShardHeaderBytes;
    if (n < header)
      user_error(path, ": truncated header (", n, " bytes, expected at least ", header, ")");
    const uint32_t width = load<uint32_t>(d + 12);
    if (width != 2 && width != 4)
      user_error(path, ": bad token width ", width, " (expected 2 or 4 bytes)");
    width_ = static_cast<int>(width);
    const bool no_identity = version == kShardVersionDocuments && load<uint64_t>(d + 24) == 0 &&
                             load<int64_t>(d + 32) == 0 && load<uint32_t>(d + 40) == 0;
    if (version >= 2 && !no_identity) {
      TokenizerId id{load<uint64_t>(d + 24), load<int64_t>(d + 32), load<uint32_t>(d + 40)};
      if (id.vocab_size <= 0 || id.eot_id >= uint64_t(id.vocab_size))
        user_error(path, ": bad tokenizer identity in the header (vocab_size ", id.vocab_size,
                   ", eot_id ", id.eot_id, ")");
      tokenizer_ = id;
    }
    const uint64_t count = load<uint64_t>(d + 16);
    const uint64_t payload = n - header;
    const bool trailer = version == kShardVersionDocuments;
    if (count > payload / width_ || (!trailer && count * width_ != payload)) {
      // The header's size without wrapping: a count near 2^64 overflows count * width.
      const bool huge = count > (UINT64_MAX - header) / uint64_t(width_);
      user_error(path, ": size mismatch: header says ", count, " tokens of ", width_, " bytes (",
                 huge ? std::string("more than 2^64") : std::to_string(header + count * width_),
                 " bytes) but the file has ", n, " bytes",
                 count > payload / width_ ? " (truncated?)" : "");
    }
    count_ = static_cast<int64_t>(count);
    tokens_ = d + header;
    if (trailer) read_trailer(header + count * width_);
  } else if (format == ShardFormat::llmc) {
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

void TokenShard::read_trailer(size_t begin) {
  const std::string& path = file_.path();
  const uint8_t* d = file_.data();
  const size_t n = file_.size();
  const size_t t = (begin + 7) / 8 * 8;
  auto need = [&](size_t end, const char* what) {
    if (end > n) user_error(path, ": truncated document trailer (", what, " ends at byte ", end,
                            ", the file has ", n, ")");
  };
  need(t + 24, "its header");
  for (size_t i = begin; i < t; ++i)
    if (d[i] != 0) user_error(path, ": nonzero padding byte ", i, " before the document trailer");
  if (std::memcmp(d + t, kShardTrailerMagic, 8) != 0)
    user_error(path, ": version 3 shard without the \"LLMPIDOC\" trailer at byte ", t);
  const uint64_t flags = load<uint64_t>(d + t + 8), docs = load<uint64_t>(d + t + 16);
  if ((flags & ~(kShardHasDocuments | kShardHasLossMask)) != 0 || !(flags & kShardHasDocuments))
    user_error(path, ": bad trailer flags ", flags, " (1 = documents, required; 2 = loss mask)");
  const uint64_t count = static_cast<uint64_t>(count_);
  if (docs > count || (count > 0 && docs == 0))
    user_error(path, ": ", docs, " documents for ", count, " tokens");
  const size_t offsets_at = t + 24;
  need(offsets_at + 8 * (docs + 1), "the document offsets");
  doc_offsets_.resize(docs + 1);
  for (uint64_t k = 0; k <= docs; ++k) {
    const uint64_t o = load<uint64_t>(d + offsets_at + 8 * k);
    const uint64_t prev = k ? static_cast<uint64_t>(doc_offsets_[k - 1]) : 0;
    if ((k == 0 && o != 0) || (k > 0 && o <= prev) || o > count || (k == docs && o != count))
      user_error(path, ": document offset ", k, " is ", o, " (offsets must start at 0, increase ",
                 "strictly and end at the token count ", count, ")");
    doc_offsets_[k] = static_cast<int64_t>(o);
  }
  size_t end = offsets_at + 8 * (docs + 1);
  if (flags & kShardHasLossMask) {
    const size_t mask_bytes = (count + 7) / 8;
    need(end + mask_bytes, "the loss mask");
    mask_ = d + end;
    if (count % 8 && (mask_[mask_bytes - 1] >> (count % 8)) != 0)
      user_error(path, ": loss mask bits set past the last token");
    end += mask_bytes;
  }
  if (end != n)
    user_error(path, ": ", n - std::min(n, end), " unexpected bytes after the document trailer");
}

std::vector<int64_t> TokenShard::document_offsets() const {
  return has_documents() ? doc_offsets_ : std::vector<int64_t>{0, count_};
}

void TokenShard::read_mask(int64_t begin, int64_t count, uint8_t* out) const {
  LLMPI_CHECK(begin >= 0 && count >= 0 && begin + count <= count_, "mask range [", begin, ", ",
              begin + count, ") of ", count_, " tokens in ", path());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t g = begin + i;
    out[i] = mask_ ? (mask_[g / 8] >> (g % 8)) & 1 : 1;
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

TokenShardWriter::TokenShardWriter(std::string path, int width, std::optional<TokenizerId> tokenizer,
                                   ShardContent content)
    : path_(std::move(path)), tmp_path_(temporary_of(path_)), width_(width),
      header_bytes_(tokenizer || content != ShardContent::tokens ? kShardHeaderBytes
                                                                 : kShardV1HeaderBytes),
      content_(content) {
  LLMPI_CHECK(width == 2 || width == 4, "token width ", width);
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) user_error(tmp_path_, ": cannot create: ", std::strerror(errno));
  uint8_t header[kShardHeaderBytes] = {};
  std::memcpy(header, kShardMagic, 8);
  const uint32_t version = content != ShardContent::tokens ? kShardVersionDocuments
                           : tokenizer                      ? kShardVersion
                                                            : 1;
  const uint32_t w = static_cast<uint32_t>(width);
  std::memcpy(header + 8, &version, 4);
  std::memcpy(header + 12, &w, 4);  // count (bytes 16..24) is patched in commit()
  if (tokenizer) {                  // a version 3 shard without one keeps the zeros
    std::memcpy(header + 24, &tokenizer->hash, 8);
    std::memcpy(header + 32, &tokenizer->vocab_size, 8);
    std::memcpy(header + 40, &tokenizer->eot_id, 4);
  }
  write_bytes(header, header_bytes_);
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

void TokenShardWriter::append_document(std::span<const uint32_t> tokens,
                                       std::span<const uint8_t> mask) {
  LLMPI_CHECK(content_ != ShardContent::tokens, "append_document to the token shard ", path_);
  LLMPI_CHECK(!tokens.empty(), "an empty document for ", path_);
  const bool has_mask = content_ == ShardContent::documents_with_mask;
  LLMPI_CHECK(mask.size() == (has_mask ? tokens.size() : 0), mask.size(), " mask entries for ",
              tokens.size(), " tokens in ", path_, has_mask ? "" : " (a shard without a mask)");
  const int64_t first = count_;
  write_tokens(tokens);
  doc_offsets_.push_back(static_cast<uint64_t>(count_));
  if (has_mask) {
    mask_bits_.resize(static_cast<size_t>((count_ + 7) / 8), 0);
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) {
        const int64_t g = first + static_cast<int64_t>(i);
        mask_bits_[static_cast<size_t>(g / 8)] |= static_cast<uint8_t>(1u << (g % 8));
      }
  }
}

void TokenShardWriter::append(std::span<const uint32_t> tokens) {
  LLMPI_CHECK(content_ == ShardContent::tokens, "append to the document shard ", path_,
              " (append_document)");
  write_tokens(tokens);
}

void TokenShardWriter::write_tokens(std::span<const uint32_t> tokens) {
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
  if (content_ != ShardContent::tokens) {
    const size_t at = header_bytes_ + static_cast<size_t>(count_) * width_;
    const uint8_t zeros[8] = {};
    write_bytes(zeros, (8 - at % 8) % 8);
    const bool mask = content_ == ShardContent::documents_with_mask;
    const uint64_t flags = kShardHasDocuments | (mask ? kShardHasLossMask : 0);
    const uint64_t docs = doc_offsets_.size() - 1;
    write_bytes(kShardTrailerMagic, 8);
    write_bytes(&flags, 8);
    write_bytes(&docs, 8);
    write_bytes(doc_offsets_.data(), doc_offsets_.size() * sizeof(uint64_t));
    if (mask) {
      mask_bits_.resize(static_cast<size_t>((count_ + 7) / 8), 0);
      write_bytes(mask_bits_.data(), mask_bits_.size());
    }
  }
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
