// NF4 base weights on a backend: quantise, upload, dequantise into the shared scratch
// (nf4_weights.h).
#include "model/nf4_weights.h"

#include "core/error.h"
#include "quant/nf4.h"

namespace llmpi {

int64_t Nf4Weight::bytes() const {
  return int64_t(codes.tensor().bytes() + scale_codes.tensor().bytes() + scale_scales.tensor().bytes());
}

void Nf4Weight::dequantize(Backend& be, const Tensor& out) const {
  LLMPI_CHECK(out.numel() == shape.numel(), "dequantize into ", out.numel(), " elements of a ",
              shape.str(), " weight");
  be.nf4_dequantize(out, codes, scale_codes, scale_scales, scale_offset);
}

void Nf4Weights::add(Backend& be, const std::string& name, Shape shape,
                     std::span<const float> values) {
  LLMPI_CHECK(int64_t(values.size()) == shape.numel(), name, ": ", values.size(), " values for ",
              shape.str());
  add(be, name, shape, nf4_quantize(values));
}

void Nf4Weights::add(Backend& be, const std::string& name, Shape shape, const Nf4Tensor& q) {
  LLMPI_CHECK(q.numel == shape.numel(), name, ": ", q.numel, " quantised values for ", shape.str());
  Nf4Weight w;
  w.shape = shape;
  w.scale_offset = q.scale_offset;
  auto upload = [&](const void* p, int64_t n, DType t) {
    Buffer b = be.alloc(Shape{n}, t);
    be.copy(b, Tensor{const_cast<void*>(p), Shape{n}, t, Device::host});
    return b;
  };
  w.codes = upload(q.codes.data(), int64_t(q.codes.size()), DType::u8);
  w.scale_codes = upload(q.scale_codes.data(), int64_t(q.scale_codes.size()), DType::u8);
  w.scale_scales = upload(q.scale_scales.data(), int64_t(q.scale_scales.size()), DType::f32);
  be.synchronize();  // the caller may free q once this returns
  weights_.insert_or_assign(name, std::move(w));  // a reload replaces it
}

const Nf4Weight* Nf4Weights::find(std::string_view name) const {
  auto it = weights_.find(name);
  return it == weights_.end() ? nullptr : &it->second;
}

void Nf4Weights::reserve_scratch(Backend& be, int64_t numel, DType compute) {
  if (scratch_.tensor().numel() >= numel && scratch_.tensor().dtype == compute) return;
  scratch_ = be.alloc(Shape{numel}, compute);
}

int64_t Nf4Weights::bytes() const {
  int64_t b = 0;
  for (const auto& [name, w] : weights_) b += w.bytes();
  return b;
}

}  // namespace llmpi
