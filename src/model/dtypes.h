#pragma once
// Dtypes of the model's tensors. Master weights, gradients and optimizer state have the
// store's master dtype (f32; f64 in host gradient checks). The weights read by forward and
// backward, and hence activations and their gradients, have the COMPUTE dtype, which the
// device decides: bf16 on CUDA (tensor cores, f32 accumulation) for an f32 master, else the
// master dtype itself (host: no extra copy). Statistics kept for backward (norm mean/rstd,
// attention and loss log-sum-exp, loss row scale) are f32, or f64 when the compute dtype is
// f64 (host gradient checks). Token ids and targets are i32.
#include "core/tensor.h"

namespace llmpi {

constexpr DType compute_dtype(Device device, DType master) {
  return device == Device::cuda && master == DType::f32 ? DType::bf16 : master;
}

constexpr DType stat_dtype(DType compute) {
  return compute == DType::f64 ? DType::f64 : DType::f32;
}

}  // namespace llmpi
