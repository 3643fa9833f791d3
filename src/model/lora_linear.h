#pragma once
// The LoRA branches beside one linear map of the model (model/lora.h gives the math of one):
// the map may be packed (q|k|v, gate|up), so each branch writes its rows [row0, row0 + O_k) of
// the packed output y [N, O] (O = Σ of the packed maps' rows):
//   y[:, row0 : row0 + O_k] += s · (x A_kᵀ) B_kᵀ
// A branch over part of y multiplies with B_k padded to [O, r] (zeros outside its rows), so
// every product is a plain linear op of the backend over whole rows; the padding costs
// N·O·r multiply-adds, against the base map's N·O·I. A branch over the whole of y uses B_k
// itself. Backward, from dy [N, O]:  dB_k += rows of dyᵀ h,  dh = s · dy B_kpad,
// dA_k += dhᵀ x,  dx += dh A_k  (dx holds the base map's input gradient already).
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
// transient), sized for the largest branch.
struct LoraModelScratch {
  Buffer z;      // [N, O_max] compute dtype: a branch's output before it is added
  Buffer bpad;   // [O_max, r] compute dtype: B padded to the packed rows
  Buffer dbpad;  // [O_max, r] gradient dtype: the padded B's gradient
  Buffer dh;     // [N, r]
  Buffer dx;     // [N, I_max]
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
  void forward_add(Backend& be, LoraLinearActs& a, LoraModelScratch& s, const Tensor& y,
                   const Tensor& x) const;
  // dx [N, I] += the branches' input gradient; their A and B gradients accumulated.
  void backward(Backend& be, const LoraLinearActs& a, LoraModelScratch& s, const Tensor& dx,
                const Tensor& dy, const Tensor& x) const;

 private:
  // B of slot k as a [O, r] matrix: B itself, or the padded copy in s.bpad.
  Tensor padded_b(Backend& be, const Slot& k, LoraModelScratch& s) const;
};

// The scratch for branches of at most `rank` columns, O_max outputs and I_max inputs, for
// N rows; grad: the adapters' gradient dtype.
LoraModelScratch alloc_lora_model_scratch(Backend& be, int64_t N, int64_t rank, int64_t O_max,
                               int64_t I_max, DType compute, DType grad);

}  // namespace llmpi
