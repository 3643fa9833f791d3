// Feed-forward layer: GELU (gpt2) or SwiGLU (llama).
#include "model/mlp.h"

namespace llmpi {

Mlp Mlp::bind(const ModelConfig& cfg, const ParamStore& store, const std::string& prefix) {
  Mlp m;
  m.swiglu = cfg.arch == Arch::llama;
  m.fused_gelu_forward = cfg.recompute != Recompute::selective;
  // Hidden width of the local slab: F, or F/tp under tensor parallelism.
  m.d_ff = store.info(prefix + ".up.weight").local_shape[0];
  const int64_t C = cfg.d_model, F = m.d_ff;
  if (m.swiglu) {
    m.up = Linear::bind(store, {prefix + ".gate.weight", prefix + ".up.weight"}, {}, 2 * F, C);
    m.down = Linear::bind(store, {prefix + ".down.weight"}, {}, C, F);
  } else {
    m.up = Linear::bind(store, {prefix + ".up.weight"}, {prefix + ".up.bias"}, F, C);
    m.down = Linear::bind(store, {prefix + ".down.weight"}, {prefix + ".down.bias"}, C, F);
  }
  return m;
}

MlpActs Mlp::alloc_acts(Backend& be, int64_t N, DType compute) const {
  MlpActs a;
  a.N = N;
  a.pre = be.alloc(Shape{N, pre_dim()}, compute);
  a.act = be.alloc(Shape{N, d_ff}, compute);
  return a;
}

MlpScratch Mlp::alloc_scratch(Backend& be, int64_t N, DType compute) const {
  MlpScratch s;
  s.dpre = be.alloc(Shape{N, pre_dim()}, compute);
  if (swiglu) s.dact = be.alloc(Shape{N, d_ff}, compute);  // gelu: fused, no d(act) buffer
  return s;
}

void Mlp::forward(Backend& be, MlpActs& a, const Tensor& y, const Tensor& x) const {
  up_activate(be, a, x);
  down.forward(be, y, a.act);
}

void Mlp::up_activate(Backend& be, MlpActs& a, const Tensor& x) const {
  if (!swiglu && fused_gelu_forward) {
    be.linear_gelu_forward(a.act, a.pre, x, up.w, up.add_bias ? up.b : Tensor{});
    return;
  }
  up.forward(be, a.pre, x);
  activate(be, a);
}

void Mlp::activate(Backend& be, MlpActs& a) const {
  if (swiglu)
    be.swiglu_forward(a.act, a.pre);
  else
    be.gelu_forward(a.act, a.pre);
}

void Mlp::backward(Backend& be, const MlpActs& a, MlpScratch& s, const Tensor& dx,
                   const Tensor& dy, const Tensor& x) const {
  const Tensor dpre = s.dpre.tensor().slice(0, Shape{a.N, pre_dim()});
  if (swiglu) {
    const Tensor dact = s.dact.tensor().slice(0, Shape{a.N, d_ff});
    down.backward(be, dact, dy, a.act);
    be.swiglu_backward(dpre, dact, a.pre);
  } else {
    be.linear_backward_gelu(dpre, down.dw, down.db, dy, a.act, down.w, a.pre);
  }
  up.backward(be, dx, dpre, x);
}

}  // namespace llmpi
