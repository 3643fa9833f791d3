#pragma once
// Training dynamics of the weights across a checkpoint series, per parameter tensor W:
//   norm ‖W_c‖, update size ‖W_c − W_{c−1}‖ / ‖W_{c−1}‖ between consecutive checkpoints, and
//   cosine similarity to the final checkpoint  W_c·W_final / (‖W_c‖ ‖W_final‖),
// kept as the sums they come from (Σx², Σ(x − prev)², Σ x·final) so that whole-model and
// per-layer values are sums of tensor values.
// Streaming: the series is split into contiguous blocks, one per rank; a rank walks its
// block tensor by tensor (a window of at most 16 files open), holding three tensors at a time
// (the final checkpoint's, the previous checkpoint's, the current one) — memory is bounded by
// the largest tensor, not the model or the series; each file is read once, plus the final
// checkpoint and the one before the block. Every tensor's checksum is recomputed as it is read.
// Collective over comm; rank 0 returns the full result (others: their own part only).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/checkpoint_series.h"

namespace llmpi {

struct WeightDynamics {
  std::vector<std::string> tensors;  // P, in the final checkpoint's order (name order)
  std::vector<int64_t> numel;        // [P]
  std::vector<int64_t> steps;        // C, the series' steps
  // [C × P] row-major (checkpoint, tensor); NaN where unknown (first checkpoint's delta,
  // a tensor that failed its checksum).
  std::vector<double> sq_norm, sq_delta, dot_final;
  std::vector<SeriesProblem> problems;  // tensors that could not be read
  int64_t bytes_read = 0;               // tensor bytes read, all ranks
  double seconds = 0.0;                 // wall time of the pass (max over ranks)

  double at(const std::vector<double>& v, size_t c, size_t t) const { return v[c * tensors.size() + t]; }
};

WeightDynamics weight_dynamics(const CheckpointSeries& series, MPI_Comm comm, const Progress& progress);

}  // namespace llmpi
