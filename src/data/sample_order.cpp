// SampleOrder: Fisher–Yates with counter-based draws; see sample_order.h for the formulas.
#include "data/sample_order.h"

#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace llmpi {

SampleOrder::SampleOrder(int64_t n_samples, uint64_t seed) : n_(n_samples), seed_(seed) {
  LLMPI_CHECK(n_samples > 0, "n_samples = ", n_samples);
  if (n_samples >= (int64_t{1} << 32))
    user_error("dataset has ", n_samples, " samples; at most 2^32 - 1 are supported "
               "(use a longer sequence length or split the dataset)");
}

std::vector<uint32_t> SampleOrder::epoch_permutation(int64_t epoch) const {
  LLMPI_CHECK(epoch >= 0, "epoch ", epoch);
  std::vector<uint32_t> perm(static_cast<size_t>(n_));
  std::iota(perm.begin(), perm.end(), 0u);
  const uint64_t key = rng_bits(rng_key(seed_, "data-order"), static_cast<uint64_t>(epoch));
  for (uint64_t i = static_cast<uint64_t>(n_) - 1; i >= 1; --i) {
    const auto j = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(rng_bits(key, i)) * (i + 1)) >> 64);
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

int64_t SampleOrder::sample_at(int64_t position) const {
  LLMPI_CHECK(position >= 0, "position ", position);
  const int64_t epoch = position / n_;
  if (epoch != cached_epoch_) {
    cached_ = epoch_permutation(epoch);
    cached_epoch_ = epoch;
  }
  return cached_[static_cast<size_t>(position % n_)];
}

}  // namespace llmpi
