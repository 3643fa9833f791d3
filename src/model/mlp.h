#pragma once
// MLP of a block. x, y: [N, C].
//   gpt2:  h = x · W_upᵀ + b [N, F];           a = gelu_tanh(h);           y = a · W_downᵀ + b
//   llama: h = x · [W_gate | W_up]ᵀ [N, 2F];   a = silu(h_gate) ⊙ h_up;   y = a · W_downᵀ
// Saves the pre-activation h and the activation a (the down projection's input) in MlpActs;
// the caller keeps x. Tensor parallelism: F is the local slab's width (F/tp); up is then
// column-parallel, down row-parallel, and y a partial sum over ranks.
// GELU runs fused into the matrix products around it (Backend::linear_gelu_forward: up +
// GELU; linear_backward_gelu: down's input gradient through GELU′), except that the forward
// stays unfused when activation recomputation is `selective`: that mode recomputes act from
// pre alone (activate), which must give the forward's bits.
#include <string>

#include "backend/backend.h"
#include "model/linear.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

struct MlpActs {
  int64_t N = 0;
  Buffer pre;  // [N, F] (gelu) or [N, 2F] = [gate | up] (swiglu)
  Buffer act;  // [N, F]
};

struct MlpScratch {  // backward temporaries, shared by every layer and micro-batch
  Buffer dpre;  // like MlpActs::pre
  Buffer dact;  // [N, F] (swiglu only)
};

struct Mlp {
  bool swiglu = false;
  int64_t d_ff = 0;  // F (local)
  Linear up;         // W [F, C] (gelu) or [2F, C] packed gate | up (swiglu)
  Linear down;       // W [C, F]
  bool fused_gelu_forward = true;  // gelu: up + GELU in one op (false under selective recompute)

  // prefix: "layers.<i>.mlp"
  static Mlp bind(const ModelConfig& cfg, const ParamStore& store, const std::string& prefix);

  int64_t pre_dim() const { return swiglu ? 2 * d_ff : d_ff; }
  MlpActs alloc_acts(Backend& be, int64_t N, DType compute) const;
  MlpScratch alloc_scratch(Backend& be, int64_t N, DType compute) const;

  void forward(Backend& be, MlpActs& a, const Tensor& y, const Tensor& x) const;
  // a.pre ← x · W_upᵀ (+ b), a.act ← activation(a.pre): forward before the down GEMM.
  void up_activate(Backend& be, MlpActs& a, const Tensor& x) const;
  // a.act ← gelu(a.pre) or swiglu(a.pre): the step of forward between the two GEMMs (also run
  // alone by activation recomputation).
  void activate(Backend& be, MlpActs& a) const;
  // dx: [N, C] overwritten; parameter gradients accumulated.
  void backward(Backend& be, const MlpActs& a, MlpScratch& s, const Tensor& dx,
                const Tensor& dy, const Tensor& x) const;
};

}  // namespace llmpi
