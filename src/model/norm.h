#pragma once
// Norm: LayerNorm y = (x - mean)·rstd·gain + bias (gpt2) or RMSNorm y = x·rstd·gain (llama),
// per token row, over the C features. x, y: [N, C]; gain, bias: [C].
// Saves mean (LayerNorm only) and rstd: [N] each, in NormActs; the caller keeps x.
// The residual stream fuses into it: forward_add first completes x += pending (a residual
// add the caller deferred), backward_add adds the residual gradient to dx (docs/kernels.md).
#include <string>

#include "backend/backend.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

struct NormActs {
  Buffer mean;  // [N]; empty for RMSNorm
  Buffer rstd;  // [N]
};

struct Norm {
  NormKind kind = NormKind::layernorm;
  double eps = 1e-5;
  int64_t dim = 0;       // C
  Tensor gain, dgain;    // [C]
  Tensor bias, dbias;    // [C]; empty for RMSNorm

  // Binds "<prefix>.weight" (and "<prefix>.bias" for LayerNorm), e.g. prefix "final_norm".
  static Norm bind(const ModelConfig& cfg, const ParamStore& store, const std::string& prefix);

  NormActs alloc_acts(Backend& be, int64_t N, DType compute) const;
  void forward(Backend& be, NormActs& a, const Tensor& y, const Tensor& x) const;
  // x ← x + pending (in place; x then holds the norm's input), y = norm(x). An empty
  // pending is forward().
  void forward_add(Backend& be, NormActs& a, const Tensor& y, const Tensor& x,
                   const Tensor& pending) const;
  // dx overwritten; dgain, dbias accumulated.
  void backward(Backend& be, const NormActs& a, const Tensor& dx, const Tensor& dy,
                const Tensor& x) const;
  // dx = dres + ∂/∂x (dres may be dx itself: the residual gradient accumulated in place).
  void backward_add(Backend& be, const NormActs& a, const Tensor& dx, const Tensor& dy,
                    const Tensor& x, const Tensor& dres) const;
};

}  // namespace llmpi
