#pragma once
// Global-norm gradient clipping: norm = sqrt(Σ g² over every gradient of the model, on every
// rank); every gradient is multiplied by scale = min(1, max_norm / norm), which AdamW
// applies as its grad_scale (no extra pass over the gradients). max_norm = 0 disables
// clipping (scale 1). A non-finite norm reports finite = false: the trainer skips the step.
// Under parallelism the ranks sum their local_sum_squares (over the gradients they own, each
// counted once) with an all-reduce before clip_from_sum_squares.
#include <span>

#include "backend/backend.h"

namespace llmpi {

struct ClipResult {
  double norm = 0.0;   // global L2 norm of the gradients (before clipping)
  double scale = 1.0;  // multiply the gradients by this
  bool finite = true;  // false when norm is inf or NaN
};

// Σ g² of these gradient tensors (synchronizes).
double local_sum_squares(Backend& be, std::span<const Tensor> grads);

// Norm and scale from the global sum of squares.
ClipResult clip_from_sum_squares(double sum_squares, double max_norm);

// Single-rank convenience: both of the above.
ClipResult clip_grad_norm(Backend& be, std::span<const Tensor> grads, double max_norm);

}  // namespace llmpi
