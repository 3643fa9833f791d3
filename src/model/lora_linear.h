#pragma once
// The LoRA branches beside one linear map of the model (model/lora.h gives the math of one):
// the map may be packed (q|k|v, gate|up), so each branch writes its columns [row0, row0 + O_k)
// of the packed output y [N, O] (O = Σ of the packed maps' rows; row0 is the branch's first
// row of the packed weight):
//   h_k = s · x A_kᵀ [N, r];   y[:, row0 : row0 + O_k] += h_k B_kᵀ
// The add is the product's own accumulation (Backend::linear_forward_add_block, β = 1 on the
// block), so a branch touches only its columns. Backward, from dy [N, O] and its block dy_k:
//   dh = s · dy_k B_k,  dB_k += dy_kᵀ h_k,  dA_k += dhᵀ x,  dx += dh A_k
// (dx holds the base map's input gradient already; linear_backward_block accumulates into it).
// enabled = false runs the base map alone (LoRA's "adapters disabled": DPO's reference).
// Tensor parallelism needs nothing here: the branch binds the slabs its store holds (B split
// with a column-parallel base's rows, A with a row-parallel base's columns), and a row-
// parallel branch's output is a partial sum like its base's (parallel/tensor_parallel.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/lora.h"
#include "model/param_store.h"

namespace llmpi {

// Scratch of every branch of a model, shared by its layers and micro-batches (each use is
// transient), sized for the largest rank.
struct LoraModelScratch {
  Buffer dh;  // [N, r] compute dtype: a branch's gradient at h
};

// The adapters a model binds beside its base weights: their store (null: none) and s.
struct AdapterStore {
  const ParamStore* store = nullptr;
  double scale = 1.0;
};

struct LoraLinearActs {
  std::vector<Buffer> h;  // per branch: [N, r] s · x Aᵀ
};

struct LoraLinear {
  struct Slot {
    LoraBranch branch;
    int64_t row0 = 0;  // first row of the packed output it writes
  };
  int64_t in_features = 0, out_features = 0;  // I, O of the (packed) base map
  std::vector<Slot> slots;
  bool enabled = true;

  bool empty() const { return slots.empty(); }
  // Adds the branch "<prefix>.lora_A/B" of the adapters (if they hold one) at row0.
  void bind(const AdapterStore& adapters, const std::string& prefix, int64_t row0);
  LoraLinearActs alloc_acts(Backend& be, int64_t N, DType compute) const;

  // y [N, O] += every branch (nothing when empty or disabled); fills a.h.
  void forward_add(Backend& be, LoraLinearActs& a, const Tensor& y, const Tensor& x) const;
  // dx [N, I] += the branches' input gradient; their A and B gradients accumulated.
  void backward(Backend& be, const LoraLinearActs& a, LoraModelScratch& s, const Tensor& dx,
                const Tensor& dy, const Tensor& x) const;
};

// The scratch for branches of at most `rank` columns, for N rows.
LoraModelScratch alloc_lora_model_scratch(Backend& be, int64_t N, int64_t rank, DType compute);

}  // namespace llmpi
