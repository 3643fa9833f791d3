// LayerNorm / RMSNorm layer over Backend::norm_forward / norm_backward.
#include "model/norm.h"

#include "model/dtypes.h"

namespace llmpi {

Norm Norm::bind(const ModelConfig& cfg, const ParamStore& store, const std::string& prefix) {
  Norm n;
  n.kind = cfg.arch == Arch::gpt2 ? NormKind::layernorm : NormKind::rmsnorm;
  n.eps = cfg.norm_eps;
  n.dim = cfg.d_model;
  n.gain = store.weight(prefix + ".weight");
  n.dgain = store.grad(prefix + ".weight");
  if (n.kind == NormKind::layernorm) {
    n.bias = store.weight(prefix + ".bias");
    n.dbias = store.grad(prefix + ".bias");
  }
  return n;
}

NormActs Norm::alloc_acts(Backend& be, int64_t N, DType compute) const {
  NormActs a;
  if (kind == NormKind::layernorm) a.mean = be.alloc(Shape{N}, stat_dtype(compute));
  a.rstd = be.alloc(Shape{N}, stat_dtype(compute));
  return a;
}

void Norm::forward(Backend& be, NormActs& a, const Tensor& y, const Tensor& x) const {
  be.norm_forward(kind, y, a.mean, a.rstd, x, gain, bias, eps);
}

void Norm::forward_add(Backend& be, NormActs& a, const Tensor& y, const Tensor& x,
                       const Tensor& pending) const {
  if (pending.empty()) return forward(be, a, y, x);
  be.add_norm_forward(kind, x, y, a.mean, a.rstd, x, pending, gain, bias, eps);
}

void Norm::backward_add(Backend& be, const NormActs& a, const Tensor& dx, const Tensor& dy,
                        const Tensor& x, const Tensor& dres) const {
  be.norm_backward_add(kind, dx, dgain, dbias, dy, dres, x, gain, a.mean, a.rstd);
}

void Norm::backward(Backend& be, const NormActs& a, const Tensor& dx, const Tensor& dy,
                    const Tensor& x) const {
  be.norm_backward(kind, dx, dgain, dbias, dy, x, gain, a.mean, a.rstd);
}

}  // namespace llmpi
