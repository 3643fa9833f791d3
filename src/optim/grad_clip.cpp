// Global-norm gradient clipping.
#include "optim/grad_clip.h"

#include <cmath>

#include "core/error.h"

namespace llmpi {

double local_sum_squares(Backend& be, std::span<const Tensor> grads) {
  return be.sum_squares(grads);
}

ClipResult clip_from_sum_squares(double sum_squares, double max_norm) {
  LLMPI_CHECK(max_norm >= 0, "max_norm = ", max_norm);
  ClipResult r;
  r.norm = std::sqrt(sum_squares);
  r.finite = std::isfinite(r.norm);
  if (r.finite && max_norm > 0 && r.norm > max_norm) r.scale = max_norm / r.norm;
  return r;
}

ClipResult clip_grad_norm(Backend& be, std::span<const Tensor> grads, double max_norm) {
  return clip_from_sum_squares(local_sum_squares(be, grads), max_norm);
}

}  // namespace llmpi
