// TokenDataset: shard concatenation, range gathering, and the content hash.
// Hash definition: 4 lanes; token g (global index, as a uint32 value) updates lane g mod 4 by
// lane = splitmix64(lane ^ token); the result is splitmix64 folded over the lanes and the
// count. Four independent lanes keep the multiply chains parallel (~4 tokens per chain step).
#include "data/token_dataset.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"

namespace llmpi {

void TokenHasher::update(const uint32_t* tokens, int64_t n) {
  int64_t i = 0;
  // Align to a lane boundary so the unrolled loop below sees lane 0 first.
  for (; i < n && (count_ + i) % 4 != 0; ++i) {
    uint64_t& l = lane_[(count_ + i) % 4];
    l = splitmix64(l ^ tokens[i]);
  }
  for (; i + 4 <= n; i += 4) {
    lane_[0] = splitmix64(lane_[0] ^ tokens[i]);
    lane_[1] = splitmix64(lane_[1] ^ tokens[i + 1]);
    lane_[2] = splitmix64(lane_[2] ^ tokens[i + 2]);
    lane_[3] = splitmix64(lane_[3] ^ tokens[i + 3]);
  }
  for (; i < n; ++i) {
    uint64_t& l = lane_[(count_ + i) % 4];
    l = splitmix64(l ^ tokens[i]);
  }
  count_ += n;
}

uint64_t TokenHasher::finish() const {
  uint64_t h = static_cast<uint64_t>(count_);
  for (uint64_t l : lane_) h = splitmix64(h ^ l);
  return h;
}

TokenDataset::TokenDataset(const std::vector<std::string>& paths, int64_t vocab_size) {
  if (paths.empty()) user_error("no token shard files given for the dataset");
  shards_.reserve(paths.size());
  for (const auto& p : paths) {
    shards_.emplace_back(p, vocab_size);
    offsets_.push_back(total_);
    total_ += shards_.back().size();
  }
  const TokenShard* named = nullptr;  // the first shard that records a tokenizer
  for (const TokenShard& s : shards_) {
    if (!s.tokenizer()) continue;
    if (named == nullptr) named = &s;
    else check_same_tokenizer(named->tokenizer(), named->path(), s.tokenizer(), s.path());
  }
}

std::optional<TokenizerId> TokenDataset::tokenizer() const {
  for (const TokenShard& s : shards_)
    if (!s.tokenizer()) return std::nullopt;
  return shards_.front().tokenizer();
}

template <class F>
void TokenDataset::for_each_piece(int64_t begin, int64_t count, F&& f) const {
  size_t s = shard_of(begin);
  while (count > 0) {
    const int64_t local = begin - offsets_[s];
    const int64_t k = std::min(count, shards_[s].size() - local);
    if (k > 0) {
      f(shards_[s], local, k);
      begin += k;
      count -= k;
    }
    ++s;
  }
}

void TokenDataset::copy(int64_t begin, int64_t count, int32_t* out) const {
  LLMPI_CHECK(begin >= 0 && count >= 0 && begin + count <= total_, "range [", begin, ", ",
              begin + count, ") of ", total_, " tokens");
  for_each_piece(begin, count, [&](const TokenShard& shard, int64_t local, int64_t k) {
    shard.read(local, k, out);
    out += k;
  });
}

size_t TokenDataset::shard_of(int64_t begin) const {
  // Last shard whose offset <= begin (skips empty shards naturally).
  return static_cast<size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), begin) -
                             offsets_.begin()) - 1;
}

bool TokenDataset::has_documents() const {
  return std::all_of(shards_.begin(), shards_.end(),
                     [](const TokenShard& s) { return s.has_documents(); });
}

bool TokenDataset::has_loss_mask() const {
  return std::all_of(shards_.begin(), shards_.end(),
                     [](const TokenShard& s) { return s.has_loss_mask(); });
}

std::vector<int64_t> TokenDataset::document_offsets() const {
  std::vector<int64_t> out{0};
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (shards_[i].size() == 0) continue;
    const std::vector<int64_t> local = shards_[i].document_offsets();
    for (size_t k = 1; k < local.size(); ++k) out.push_back(offsets_[i] + local[k]);
  }
  return out;
}

void TokenDataset::copy_mask(int64_t begin, int64_t count, uint8_t* out) const {
  LLMPI_CHECK(begin >= 0 && count >= 0 && begin + count <= total_, "mask range [", begin, ", ",
              begin + count, ") of ", total_, " tokens");
  for_each_piece(begin, count, [&](const TokenShard& shard, int64_t local, int64_t k) {
    shard.read_mask(local, k, out);
    out += k;
  });
}

std::string TokenDataset::describe() const {
  std::ostringstream os;
  for (size_t i = 0; i < shards_.size(); ++i)
    os << (i ? ", " : "") << shards_[i].path() << " (" << shards_[i].size() << " tokens)";
  return os.str();
}

uint64_t TokenDataset::content_hash() const {
  if (!hash_) {
    TokenHasher h;
    std::vector<uint32_t> buf(1 << 16);
    for (const TokenShard& s : shards_)
      for (int64_t b = 0; b < s.size(); b += static_cast<int64_t>(buf.size())) {
        const int64_t k = std::min<int64_t>(static_cast<int64_t>(buf.size()), s.size() - b);
        s.read(b, k, buf.data());
        h.update(buf.data(), k);
      }
    hash_ = h.finish();
  }
  return *hash_;
}

}  // namespace llmpi
