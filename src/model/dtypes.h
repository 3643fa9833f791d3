#pragma once
// Dtypes of the model's tensors, derived from the compute dtype of the parameter store:
// activations and gradients use the compute dtype; statistics kept for backward (norm
// mean/rstd, attention and loss log-sum-exp, loss row scale) are f32, or f64 when the
// compute dtype is f64 (host gradient checks). Token ids and targets are i32.
#include "core/tensor.h"

namespace llmpi {

constexpr DType stat_dtype(DType compute) {
  return compute == DType::f64 ? DType::f64 : DType::f32;
}

}  // namespace llmpi
