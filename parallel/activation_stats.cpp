#include "parallel/activation_stats.h"

#include <cmath>

#include "core/error.h"
#include "parallel/communicator.h"

namespace llmpi {

ActivationStats::ActivationStats(int64_t n_layers, bool counts)
    : counts_(counts), sum_sq_(size_t(n_layers), 0.0), count_(size_t(n_layers), 0.0) {}

void ActivationStats::arm() {
  std::fill(sum_sq_.begin(), sum_sq_.end(), 0.0);
  std::fill(count_.begin(), count_.end(), 0.0);
  armed_ = true;
}

void ActivationStats::disarm() { armed_ = false; }

void ActivationStats::block_output(Backend& be, int64_t layer, const Tensor& out) {
  if (!armed_ || !counts_) return;
  LLMPI_CHECK(layer >= 0 && layer < int64_t(sum_sq_.size()), "block ", layer, " of ", sum_sq_.size());
  const Tensor t[] = {out};
  sum_sq_[size_t(layer)] += be.sum_squares(t);
  count_[size_t(layer)] += double(out.numel());
}

std::vector<double> ActivationStats::reduce(MPI_Comm comm) const {
  std::vector<double> both(sum_sq_);
  both.insert(both.end(), count_.begin(), count_.end());
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, both.data(), int(both.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  const size_t L = sum_sq_.size();
  std::vector<double> rms(L);
  for (size_t l = 0; l < L; ++l)
    rms[l] = both[L + l] > 0 ? std::sqrt(both[l] / both[L + l]) : std::nan("");
  return rms;
}

}  // namespace llmpi
