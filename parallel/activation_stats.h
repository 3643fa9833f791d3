#pragma once
// ActivationStats: the RMS of each transformer block's output over a whole training step —
// every micro-batch, every data-parallel rank — for the logbook's per-layer statistics.
// Installed as the BlockObserver of every model the engine runs; it measures only while
// armed (the steps of logbook.layer_stats_every). Layout-independent: a rank counts the rows
// it holds, except that without sequence parallelism the tp ranks of a group hold the same
// rows and only tp rank 0 counts them; reduce() sums Σx² and the element counts over the world.
//   RMS_l = sqrt( Σ over the step's rows of Σ_c out_l[row, c]² / (rows · C) )
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace llmpi {

class ActivationStats : public BlockObserver {
 public:
  // n_layers: the model's L; counts: whether this rank's rows are counted (see above).
  ActivationStats(int64_t n_layers, bool counts);

  void arm();     // start measuring (clears the sums)
  void disarm();  // stop measuring
  void block_output(Backend& be, int64_t layer, const Tensor& out) override;
  bool observing() const override { return armed_; }

  // Collective over comm: the RMS per layer [L] of what was measured since arm().
  std::vector<double> reduce(MPI_Comm comm) const;

 private:
  bool counts_ = true, armed_ = false;
  std::vector<double> sum_sq_, count_;  // [L]
};

}  // namespace llmpi
