// BPE training with incremental pair counts.
// State: words (symbol sequences) with counts; pair_count[(a,b)] = weighted occurrences;
// where[(a,b)] = indices of words that contained (a,b) when it was last created (may hold
// stale entries, checked on use); a max-heap of (count, pair) with lazy invalidation — an
// entry is valid only if its count equals pair_count now; every count change pushes a fresh
// entry, so the true maximum is always in the heap.
// Merging (a,b) → z: for each word listed under (a,b) that still contains it, subtract the
// word's old pairs, rewrite it, add its new pairs; net deltas are applied once per pair.
#include "data/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <vector>

#include "core/error.h"
#include "data/pretokenize.h"

namespace llmpi {

namespace {

constexpr uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // Max-heap on count; among equal counts the smaller pair key must come out first.
  bool operator<(const HeapEntry& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

// Visits the adjacent pairs of a word as they are counted: non-overlapping runs, so "aaa"
// counts (a,a) once — matching what a merge of (a,a) would consume.
template <class Fn>
void for_each_pair(const std::vector<uint32_t>& w, Fn&& fn) {
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    fn(pair_key(w[i], w[i + 1]));
    if (w[i] == w[i + 1] && i + 2 < w.size() && w[i + 2] == w[i]) ++i;
  }
}

}  // namespace

void BpeTrainer::add_text(std::string_view text) {
  for_each_chunk(text, [&](std::string_view chunk) {
    auto it = word_counts_.find(std::string(chunk));  // find first: no alloc on hit is C++26
    if (it != word_counts_.end())
      ++it->second;
    else
      word_counts_.emplace(std::string(chunk), 1);
  });
}

void check_bpe_vocab_size(int64_t vocab_size, std::string_view what) {
  if (vocab_size < 257)
    user_error(what, " ", vocab_size, " is too small (minimum 257: 256 bytes + <|endoftext|>)");
  if (vocab_size > (int64_t{1} << 31))
    user_error(what, " ", vocab_size, " is too large (maximum 2^31)");
}

Tokenizer BpeTrainer::train(int64_t vocab_size) const {
  check_bpe_vocab_size(vocab_size, "tokenizer vocabulary size");
  const int64_t target_merges = vocab_size - 257;

  // Words in a deterministic order (sorted bytes), independent of hash-map iteration.
  std::vector<std::pair<std::string_view, int64_t>> sorted(word_counts_.begin(),
                                                           word_counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<uint32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    for (char c : sorted[i].first) words[i].push_back(static_cast<unsigned char>(c));
    freq[i] = sorted[i].second;
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (size_t i = 0; i < words.size(); ++i)
    for_each_pair(words[i], [&](uint64_t p) {
      pair_count[p] += freq[i];
      auto& list = where[p];
      if (list.empty() || list.back() != i) list.push_back(static_cast<uint32_t>(i));
    });
  std::priority_queue<HeapEntry> heap;
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  std::vector<BpeMerge> merges;
  merges.reserve(static_cast<size_t>(target_merges));
  std::unordered_map<uint64_t, int64_t> delta;
  std::vector<uint32_t> rewritten;
  while (static_cast<int64_t>(merges.size()) < target_merges && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    auto pc = pair_count.find(top.pair);
    if (pc == pair_count.end() || pc->second != top.count) continue;  // stale entry
    if (top.count < 2) break;  // nothing left worth merging
    const uint32_t a = static_cast<uint32_t>(top.pair >> 32);
    const uint32_t b = static_cast<uint32_t>(top.pair & 0xFFFFFFFFu);
    const uint32_t z = 256 + static_cast<uint32_t>(merges.size());
    merges.push_back({a, b});

    delta.clear();
    std::vector<uint32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    for (uint32_t wi : affected) {
      std::vector<uint32_t>& w = words[wi];
      bool contains = false;
      for (size_t i = 0; i + 1 < w.size() && !contains; ++i) contains = w[i] == a && w[i + 1] == b;
      if (!contains) continue;  // stale listing: an earlier merge consumed it
      const int64_t f = freq[wi];
      for_each_pair(w, [&](uint64_t p) { delta[p] -= f; });
      rewritten.clear();
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          rewritten.push_back(z);
          i += 2;
        } else {
          rewritten.push_back(w[i++]);
        }
      }
      w.swap(rewritten);
      for_each_pair(w, [&](uint64_t p) {
        delta[p] += f;
        const auto l = static_cast<uint32_t>(p >> 32), r = static_cast<uint32_t>(p);
        if (l == z || r == z) {  // a new pair: remember where it lives
          auto& list = where[p];
          if (list.empty() || list.back() != wi) list.push_back(wi);
        }
      });
    }
    for (const auto& [p, d] : delta) {
      if (d == 0) continue;
      int64_t& c = pair_count[p];
      c += d;
      LLMPI_CHECK(c >= 0, "negative pair count");
      if (c == 0)
        pair_count.erase(p);
      else
        heap.push({c, p});
    }
  }
  return Tokenizer(std::move(merges));
}

}  // namespace llmpi
