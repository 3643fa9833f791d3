#pragma once
// SampleOrder: the global order in which training samples are consumed — a pure function of
// (seed, n_samples, position), independent of the parallel layout (DESIGN.md §7).
//   position p → epoch e = p / n, slot k = p % n, sample = perm_e[k]
// where perm_e is the Fisher–Yates shuffle of [0, n) driven by the counter-based RNG:
//   key_e = rng_bits(rng_key(seed, "data-order"), e)
//   for i = n-1 .. 1:  j = floor(rng_bits(key_e, i) * (i + 1) / 2^64);  swap(perm[i], perm[j])
// (the multiply-shift bias is at most n / 2^64). The permutation of the current epoch is
// cached (so lookups are O(1) after an O(n) rebuild per epoch); the cache makes this class
// not thread-safe. Sample indices are stored as uint32, so n < 2^32.
#include <cstdint>
#include <vector>

namespace llmpi {

class SampleOrder {
 public:
  SampleOrder(int64_t n_samples, uint64_t seed);

  int64_t n_samples() const { return n_; }
  uint64_t seed() const { return seed_; }
  int64_t sample_at(int64_t position) const;
  // The whole permutation of one epoch (a fresh vector; does not touch the cache).
  std::vector<uint32_t> epoch_permutation(int64_t epoch) const;

 private:
  int64_t n_;
  uint64_t seed_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<uint32_t> cached_;
};

}  // namespace llmpi
