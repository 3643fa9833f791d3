// LoRA branches beside a (packed) linear map: forward and backward (lora_linear.h).
#include "model/lora_linear.h"

#include "core/error.h"

namespace llmpi {

void LoraLinear::bind(const AdapterStore& adapters, const std::string& prefix, int64_t row0) {
  if (!adapters.store || !adapters.store->contains(prefix + ".lora_A")) return;
  Slot k{LoraBranch::bind(*adapters.store, prefix, adapters.scale), row0};
  LLMPI_CHECK(k.branch.in_features == in_features && row0 >= 0 &&
                  row0 + k.branch.out_features <= out_features,
              prefix, ": LoRA branch ", k.branch.out_features, " x ", k.branch.in_features,
              " at row ", row0, " of a ", out_features, " x ", in_features, " map");
  slots.push_back(std::move(k));
}

LoraLinearActs LoraLinear::alloc_acts(Backend& be, int64_t N, DType compute) const {
  LoraLinearActs a;
  for (const Slot& k : slots) a.h.push_back(be.alloc(Shape{N, k.branch.rank}, compute));
  return a;
}

LoraModelScratch alloc_lora_model_scratch(Backend& be, int64_t N, int64_t rank, DType compute) {
  return LoraModelScratch{be.alloc(Shape{N, rank}, compute)};
}

void LoraLinear::forward_add(Backend& be, LoraLinearActs& a, const Tensor& y,
                             const Tensor& x) const {
  if (!enabled) return;
  const int64_t N = x.numel() / in_features;
  for (size_t i = 0; i < slots.size(); ++i) {
    const LoraBranch& b = slots[i].branch;
    const Tensor h = a.h[i].tensor().slice(0, Shape{N, b.rank});
    be.linear_forward(h, x, b.A, Tensor{});
    be.scale(h, b.scale);
    be.linear_forward_add_block(y, slots[i].row0, h, b.B);
  }
}

void LoraLinear::backward(Backend& be, const LoraLinearActs& a, LoraModelScratch& s, const Tensor& dx,
                          const Tensor& dy, const Tensor& x) const {
  if (!enabled) return;
  const int64_t N = x.numel() / in_features;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& k = slots[i];
    const LoraBranch& b = k.branch;
    const Tensor h = a.h[i].tensor().slice(0, Shape{N, b.rank});
    const Tensor dh = s.dh.tensor().slice(0, Shape{N, b.rank});
    be.fill(dh, 0.0);
    be.linear_backward_block(dh, b.dB, dy, k.row0, h, b.B);  // dh = dy_k B, dB += dy_kᵀ h
    be.scale(dh, b.scale);
    be.linear_backward_block(dx, b.dA, dh, 0, x, b.A);  // dx += dh A, dA += dhᵀ x
  }
}

}  // namespace llmpi
