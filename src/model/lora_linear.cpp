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

LoraModelScratch alloc_lora_model_scratch(Backend& be, int64_t N, int64_t rank, int64_t O_max,
                               int64_t I_max, DType compute, DType grad) {
  LoraModelScratch s;
  s.z = be.alloc(Shape{N, O_max}, compute);
  s.bpad = be.alloc(Shape{O_max, rank}, compute);
  s.dbpad = be.alloc(Shape{O_max, rank}, grad);
  s.dh = be.alloc(Shape{N, rank}, compute);
  s.dx = be.alloc(Shape{N, I_max}, compute);
  return s;
}

Tensor LoraLinear::padded_b(Backend& be, const Slot& k, LoraModelScratch& s) const {
  const LoraBranch& b = k.branch;
  if (b.out_features == out_features) return b.B;
  const Tensor bp = s.bpad.tensor().slice(0, Shape{out_features, b.rank});
  be.fill(bp, 0.0);
  be.copy(bp.slice(k.row0 * b.rank, b.B.shape), b.B);
  return bp;
}

void LoraLinear::forward_add(Backend& be, LoraLinearActs& a, LoraModelScratch& s, const Tensor& y,
                             const Tensor& x) const {
  if (!enabled) return;
  const int64_t N = x.numel() / in_features;
  const Tensor z = s.z.tensor().slice(0, Shape{N, out_features});
  for (size_t i = 0; i < slots.size(); ++i) {
    const LoraBranch& b = slots[i].branch;
    const Tensor h = a.h[i].tensor().slice(0, Shape{N, b.rank});
    be.linear_forward(h, x, b.A, Tensor{});
    be.scale(h, b.scale);
    be.linear_forward(z, h, padded_b(be, slots[i], s), Tensor{});
    be.add(y, y, z);
  }
}

void LoraLinear::backward(Backend& be, const LoraLinearActs& a, LoraModelScratch& s, const Tensor& dx,
                          const Tensor& dy, const Tensor& x) const {
  if (!enabled) return;
  const int64_t N = x.numel() / in_features;
  const Tensor dxb = s.dx.tensor().slice(0, Shape{N, in_features});
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& k = slots[i];
    const LoraBranch& b = k.branch;
    const Tensor h = a.h[i].tensor().slice(0, Shape{N, b.rank});
    const Tensor dh = s.dh.tensor().slice(0, Shape{N, b.rank});
    if (b.out_features == out_features) {
      be.linear_backward(dh, b.dB, Tensor{}, dy, h, b.B);  // dh = dy B, dB += dyᵀ h
    } else {
      const Tensor dbp = s.dbpad.tensor().slice(0, Shape{out_features, b.rank});
      be.fill(dbp, 0.0);
      be.linear_backward(dh, dbp, Tensor{}, dy, h, padded_b(be, k, s));
      const Tensor rows = dbp.slice(k.row0 * b.rank, b.dB.shape);
      be.add(b.dB, b.dB, rows);
    }
    be.scale(dh, b.scale);
    be.linear_backward(dxb, b.dA, Tensor{}, dh, x, b.A);  // dA += dhᵀ x
    be.add(dx, dx, dxb);
  }
}

}  // namespace llmpi
