// Feed-forward layer: GELU (gpt2) or SwiGLU (llama).
#include "model/mlp.h"

namespace llmpi {

Mlp Mlp::bind(const ModelConfig& cfg, const ParamStore& store, const std::string& prefix,
              const AdapterStore& adapters) {
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
  m.up_lora.in_features = C;
  m.up_lora.out_features = m.pre_dim();
  if (m.swiglu) m.up_lora.bind(adapters, prefix + ".gate", 0);
  m.up_lora.bind(adapters, prefix + ".up", m.swiglu ? F : 0);
  m.down_lora.in_features = F;
  m.down_lora.out_features = C;
  m.down_lora.bind(adapters, prefix + ".down", 0);
  return m;
}

MlpActs Mlp::alloc_acts(Backend& be, int64_t N, DType compute) const {
  MlpActs a;
  a.N = N;
  a.pre = be.alloc(Shape{N, pre_dim()}, compute);
  a.act = be.alloc(Shape{N, d_ff}, compute);
  a.up_lora = up_lora.alloc_acts(be, N, compute);
  a.down_lora = down_lora.alloc_acts(be, N, compute);
  return a;
}

MlpScratch Mlp::alloc_scratch(Backend& be, int64_t N, DType compute) const {
  MlpScratch s;
  s.dpre = be.alloc(Shape{N, pre_dim()}, compute);
  // gelu: fused, no d(act) buffer — unless an adapter on down adds to d(act)
  if (swiglu || !down_lora.empty()) s.dact = be.alloc(Shape{N, d_ff}, compute);
  return s;
}

void Mlp::forward(Backend& be, MlpActs& a, const Tensor& y, const Tensor& x) const {
  up_activate(be, a, x);
  down_forward(be, a, y);
}

void Mlp::down_forward(Backend& be, MlpActs& a, const Tensor& y) const {
  down.forward(be, y, a.act);
  if (!down_lora.empty()) down_lora.forward_add(be, a.down_lora, y, a.act);
}

void Mlp::up_activate(Backend& be, MlpActs& a, const Tensor& x) const {
  const bool adapted = !up_lora.empty() && up_lora.enabled;
  if (!swiglu && fused_gelu_forward && !adapted) {
    up.materialize(be);
    be.linear_gelu_forward(a.act, a.pre, x, up.w, up.add_bias ? up.b : Tensor{});
    return;
  }
  up.forward(be, a.pre, x);
  if (adapted) up_lora.forward_add(be, a.up_lora, a.pre, x);
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
  if (swiglu || !down_lora.empty()) {
    const Tensor dact = s.dact.tensor().slice(0, Shape{a.N, d_ff});
    down.backward(be, dact, dy, a.act);
    if (!down_lora.empty()) down_lora.backward(be, a.down_lora, *a.lora, dact, dy, a.act);
    if (swiglu)
      be.swiglu_backward(dpre, dact, a.pre);
    else
      be.gelu_backward(dpre, dact, a.pre);
  } else {
    down.materialize(be);
    be.linear_backward_gelu(dpre, down.dw, down.db, dy, a.act, down.w, a.pre);
  }
  up.backward(be, dx, dpre, x);
  if (!up_lora.empty()) up_lora.backward(be, a.up_lora, *a.lora, dx, dpre, x);
}

}  // namespace llmpi
