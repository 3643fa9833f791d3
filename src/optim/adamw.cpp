// AdamW over flat parameter buffers.
#include "optim/adamw.h"

#include <algorithm>

namespace llmpi {

AdamWOptions AdamWOptions::from(const TrainSection& t) {
  AdamWOptions o;
  o.beta1 = t.beta1;
  o.beta2 = t.beta2;
  o.eps = t.eps;
  o.weight_decay = t.weight_decay;
  return o;
}

AdamW::AdamW(Backend& be, const ParamStore& store, AdamWOptions opt, int64_t begin,
             int64_t end)
    : store_(store), opt_(opt), begin_(begin), end_(end < 0 ? store.numel() : end) {
  LLMPI_CHECK(0 <= begin_ && begin_ <= end_ && end_ <= store.numel(), "AdamW range [", begin_,
              ", ", end_, ") of ", store.numel());
  const int64_t n = end_ - begin_;
  // Moments live in the master dtype (f32; f64 in gradient checks), never in the bf16
  // compute dtype of a device store.
  m_ = be.alloc(Shape{n}, store.master_dtype());
  v_ = be.alloc(Shape{n}, store.master_dtype());
  if (n > 0) {
    be.fill(m_, 0.0);
    be.fill(v_, 0.0);
  }
  for (const ParamInfo& p : store.params()) {
    const int64_t lo = std::max(begin_, p.offset), hi = std::min(end_, p.offset + p.numel());
    if (lo >= hi) continue;
    const Shape s{hi - lo};
    AdamWSlice sl;
    sl.param = store.master().slice(lo, s);
    sl.grad = store.grads().slice(lo, s);
    sl.m = m().slice(lo - begin_, s);
    sl.v = v().slice(lo - begin_, s);
    sl.weight_decay = p.weight_decay ? static_cast<float>(opt_.weight_decay) : 0.f;
    // The update also refreshes the weights forward reads, where they are a separate copy.
    if (store.has_compute_copy()) sl.compute = store.compute().slice(lo, s);
    slices_.push_back(sl);
  }
}

void AdamW::step(Backend& be, double lr, double grad_scale) {
  ++t_;
  AdamWHyper h;
  h.lr = static_cast<float>(lr);
  h.beta1 = static_cast<float>(opt_.beta1);
  h.beta2 = static_cast<float>(opt_.beta2);
  h.eps = static_cast<float>(opt_.eps);
  h.step = t_;
  h.grad_scale = static_cast<float>(grad_scale);
  if (!slices_.empty()) be.adamw_update(slices_, h);
}

Tensor AdamW::moment_view(const Tensor& flat, std::string_view name) const {
  const ParamInfo& p = store_.info(name);
  LLMPI_CHECK(p.offset >= begin_ && p.offset + p.numel() <= end_, name,
              " is not inside this optimizer's range");
  return flat.slice(p.offset - begin_, p.local_shape);
}

}  // namespace llmpi
