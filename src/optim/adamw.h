#pragma once
// AdamW (Loshchilov & Hutter) with decoupled weight decay, over a ParamStore's flat buffers:
//   g = grad_scale·grad;  m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²
//   p -= lr · ( m/(1-β1^t) / (sqrt(v/(1-β2^t)) + eps) + wd·p ),   wd = 0 where
//   ParamInfo::weight_decay is false (norm gains, biases).
// Owns the moments m, v: flat buffers with the layout of the store's range [begin, end)
// (the whole store, or a ZeRO shard's offset range), so element i of m belongs to flat
// parameter element begin + i. One AdamWSlice per parameter piece inside the range; the
// backend applies them in one fused launch. t (the step count) is 1-based and persists in
// checkpoints (set_step_count on resume).
#include <span>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "model/param_store.h"

namespace llmpi {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;

  static AdamWOptions from(const TrainSection& t);
};

class AdamW {
 public:
  // State for the flat elements [begin, end) of `store` (end < 0: up to the end).
  AdamW(Backend& be, const ParamStore& store, AdamWOptions opt, int64_t begin = 0,
        int64_t end = -1);

  // One update with learning rate lr; gradients are multiplied by grad_scale first.
  void step(Backend& be, double lr, double grad_scale = 1.0);

  int64_t step_count() const { return t_; }  // updates applied so far
  void set_step_count(int64_t t) { t_ = t; }
  const AdamWOptions& options() const { return opt_; }
  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }

  // Moments, flat [end - begin].
  const Tensor& m() const { return m_.tensor(); }
  const Tensor& v() const { return v_.tensor(); }
  // A parameter's moments with its local shape (the parameter must lie inside the range).
  Tensor m(std::string_view name) const { return moment_view(m(), name); }
  Tensor v(std::string_view name) const { return moment_view(v(), name); }
  std::span<const AdamWSlice> slices() const { return slices_; }

 private:
  Tensor moment_view(const Tensor& flat, std::string_view name) const;

  const ParamStore& store_;
  AdamWOptions opt_;
  int64_t begin_ = 0, end_ = 0;
  int64_t t_ = 0;
  Buffer m_, v_;
  std::vector<AdamWSlice> slices_;
};

}  // namespace llmpi
