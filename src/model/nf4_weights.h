#pragma once
// QLoRA's frozen base weights in NF4 (quant/nf4.h) on a backend: each weight's codes,
// int8 block scales and their f32 group scales, quantised on the host from its f32 values
// (the rank's slab under tensor parallelism: its blocks of 64 run along the slab's row-major
// elements), and one shared scratch into which a layer dequantises its weight right before
// each matrix product (Linear::materialize), forward and backward. Storage per weight:
// 0.5 byte + 1/64 byte (block scales) + 4/16384 byte (group scales).
// The table is filled before any model binds to it, then read only.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "quant/nf4.h"

namespace llmpi {

struct Nf4Weight {
  Shape shape;         // the weight's local shape [O, I]
  Buffer codes;        // u8 [ceil(n / 2)]
  Buffer scale_codes;  // u8 [blocks] (int8 k_b)
  Buffer scale_scales; // f32 [ceil(blocks / 256)]
  double scale_offset = 0.0;

  int64_t bytes() const;
  // out [n] (compute dtype) ← the dequantised weight.
  void dequantize(Backend& be, const Tensor& out) const;
};

class Nf4Weights {
 public:
  // Quantises `values` (row-major, `shape`) and uploads it as weight `name`.
  void add(Backend& be, const std::string& name, Shape shape, std::span<const float> values);
  // Uploads `q` (nf4_quantize of the weight's row-major values) as weight `name`.
  void add(Backend& be, const std::string& name, Shape shape, const Nf4Tensor& q);
  const Nf4Weight* find(std::string_view name) const;
  bool empty() const { return weights_.empty(); }
  // The shared dequantisation scratch of `numel` elements of `compute` (allocated once, at the
  // largest size asked before the first model binds).
  void reserve_scratch(Backend& be, int64_t numel, DType compute);
  const Tensor& scratch() const { return scratch_.tensor(); }
  int64_t bytes() const;  // every weight's storage (not the scratch)
  int64_t scratch_bytes() const {  // 0 before reserve_scratch (an unallocated Buffer)
    return scratch_.tensor().empty() ? 0 : int64_t(scratch_.tensor().bytes());
  }

 private:
  std::map<std::string, Nf4Weight, std::less<>> weights_;
  Buffer scratch_;
};

}  // namespace llmpi
