// LoRA branch: parameters, forward and backward with the backend's linear ops (lora.h).
#include "model/lora.h"

#include <cmath>

namespace llmpi {

double lora_scale(double alpha, int64_t rank, bool rslora) {
  LLMPI_CHECK(rank > 0 && alpha > 0, "LoRA rank ", rank, ", alpha ", alpha);
  return alpha / (rslora ? std::sqrt(static_cast<double>(rank)) : static_cast<double>(rank));
}

std::vector<ParamInfo> lora_params(const std::string& prefix, int64_t in_features,
                                   int64_t out_features, int64_t rank) {
  LLMPI_CHECK(rank > 0 && in_features > 0 && out_features > 0, prefix, ": LoRA rank ", rank,
              " on ", out_features, " x ", in_features);
  ParamInfo a = full_param(prefix + ".lora_A", Shape{rank, in_features}, InitKind::uniform,
                           1.0 / std::sqrt(static_cast<double>(in_features)), false);
  ParamInfo b = full_param(prefix + ".lora_B", Shape{out_features, rank}, InitKind::zeros, 0.0,
                           false);
  return {a, b};
}

LoraBranch LoraBranch::bind(const ParamStore& store, const std::string& prefix, double scale) {
  LoraBranch l;
  l.A = store.weight(prefix + ".lora_A");
  l.dA = store.grad(prefix + ".lora_A");
  l.B = store.weight(prefix + ".lora_B");
  l.dB = store.grad(prefix + ".lora_B");
  l.rank = l.A.dim(0);
  l.in_features = l.A.dim(1);
  l.out_features = l.B.dim(0);
  LLMPI_CHECK(l.B.dim(1) == l.rank, prefix, ": lora_B ", l.B.shape.str(), " for rank ", l.rank);
  l.scale = scale;
  return l;
}

LoraActs LoraBranch::alloc_acts(Backend& be, int64_t N, DType compute) const {
  return {be.alloc(Shape{N, rank}, compute)};
}

LoraScratch LoraBranch::alloc_scratch(Backend& be, int64_t N, DType compute) const {
  return {be.alloc(Shape{N, rank}, compute), be.alloc(Shape{N, in_features}, compute)};
}

void LoraBranch::forward(Backend& be, LoraActs& a, const Tensor& z, const Tensor& x) const {
  const int64_t N = x.numel() / in_features;
  const Tensor h = a.h.tensor().slice(0, Shape{N, rank});
  be.linear_forward(h, x, A, Tensor{});
  be.scale(h, scale);
  be.linear_forward(z, h, B, Tensor{});
}

void LoraBranch::backward(Backend& be, const LoraActs& a, LoraScratch& s, const Tensor& dx,
                          const Tensor& dz, const Tensor& x) const {
  const int64_t N = x.numel() / in_features;
  const Tensor h = a.h.tensor().slice(0, Shape{N, rank});
  const Tensor dh = s.dh.tensor().slice(0, Shape{N, rank});
  const Tensor dxb = s.dx.tensor().slice(0, Shape{N, in_features});
  be.linear_backward(dh, dB, Tensor{}, dz, h, B);  // dh = dz B, dB += dzᵀ h
  be.scale(dh, scale);
  be.linear_backward(dxb, dA, Tensor{}, dh, x, A);  // dA += dhᵀ x
  be.add(dx, dx, dxb);
}

}  // namespace llmpi
