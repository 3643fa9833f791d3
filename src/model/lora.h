#pragma once
// LoRA (Hu et al., 2021): beside a frozen linear map y = x Wᵀ, a trainable low-rank branch
//   z = s · (x Aᵀ) Bᵀ      x: [N, I], A: [r, I], B: [O, r], z: [N, O]
// added to y (by the caller: into y itself, or into its columns of a packed q|k|v or
// gate|up output). s = α / r, or α / √r with rsLoRA (Kalajdzievski, 2023). Init as PEFT:
// A Kaiming-uniform, U(−1/√I, 1/√I); B zero, so training starts from the base model exactly.
// Forward saves h = s · x Aᵀ [N, r] (LoraActs); backward, from dz = ∂L/∂z:
//   dB += dzᵀ h,  dh = s · dz B,  dA += dhᵀ x,  dx += dh A    (dx accumulates onto the base's)
// The merged weight of a branch is W + s · B A (merge: quant/…, `llmpi lora merge`).
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/param_store.h"

namespace llmpi {

// s for rank r and alpha (rslora: α / √r, else α / r).
double lora_scale(double alpha, int64_t rank, bool rslora);

// The two parameters of a branch on a map with I inputs and O outputs: "<prefix>.lora_A"
// [r, I] (uniform ±1/√I) and "<prefix>.lora_B" [O, r] (zeros), whole (no sharding).
std::vector<ParamInfo> lora_params(const std::string& prefix, int64_t in_features,
                                   int64_t out_features, int64_t rank);

struct LoraActs {
  Buffer h;  // [N, r] s · x Aᵀ
};

struct LoraScratch {
  Buffer dh;  // [N, r]
  Buffer dx;  // [N, I] the branch's part of dx, before it is added
};

struct LoraBranch {
  int64_t rank = 0, in_features = 0, out_features = 0;
  double scale = 1.0;
  Tensor A, dA;  // [r, I]
  Tensor B, dB;  // [O, r]

  static LoraBranch bind(const ParamStore& store, const std::string& prefix, double scale);

  LoraActs alloc_acts(Backend& be, int64_t N, DType compute) const;
  LoraScratch alloc_scratch(Backend& be, int64_t N, DType compute) const;

  // z = s · (x Aᵀ) Bᵀ (overwritten); fills a.h.
  void forward(Backend& be, LoraActs& a, const Tensor& z, const Tensor& x) const;
  // dA, dB accumulated; dx += the branch's input gradient (dx must hold the base's already).
  void backward(Backend& be, const LoraActs& a, LoraScratch& s, const Tensor& dx,
                const Tensor& dz, const Tensor& x) const;
};

}  // namespace llmpi
