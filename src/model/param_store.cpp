// ParamStore: flat parameter/gradient buffers and the layout-independent model init.
#include "model/param_store.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/host_threads.h"
#include "core/rng.h"
#include "model/dtypes.h"

namespace llmpi {

ParamInfo full_param(std::string name, Shape shape, InitKind init, double init_std,
                     bool weight_decay) {
  ParamInfo p;
  p.name = std::move(name);
  p.global_shape = shape;
  p.local_shape = shape;
  p.init = init;
  p.init_std = init_std;
  p.weight_decay = weight_decay;
  return p;
}

double init_value(const ParamInfo& p, uint64_t seed, int64_t global_index) {
  switch (p.init) {
    case InitKind::zeros: return 0.0;
    case InitKind::ones: return 1.0;
    case InitKind::normal:
      return p.init_std * rng_normal(rng_key(seed, p.name), static_cast<uint64_t>(global_index));
    case InitKind::uniform:
      return p.init_std *
             (2.0 * rng_uniform(rng_key(seed, p.name), static_cast<uint64_t>(global_index)) - 1.0);
  }
  return 0.0;
}

ParamStore::ParamStore(Backend& be, std::vector<ParamInfo> params, DType master_dtype,
                       StoreRole role)
    : params_(std::move(params)), role_(role),
      compute_dtype_(compute_dtype(be.device(), master_dtype)) {
  int64_t grad_numel = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    ParamInfo& p = params_[i];
    LLMPI_CHECK(p.local_shape.ndim == p.global_shape.ndim, p.name, ": local ",
                p.local_shape.str(), " vs global ", p.global_shape.str());
    for (int d = 0; d < p.global_shape.ndim; ++d)
      LLMPI_CHECK(p.local_start[d] >= 0 &&
                      p.local_start[d] + p.local_shape[d] <= p.global_shape[d],
                  p.name, ": slab outside the global tensor in dim ", d);
    LLMPI_CHECK(index_.emplace(p.name, i).second, "duplicate parameter ", p.name);
    LLMPI_CHECK(!p.external || role == StoreRole::frozen, p.name, ": external in a trainable store");
    p.offset = numel_;
    at_.push_back(p.external ? -1 : numel_);
    if (!p.external) numel_ += p.numel();
    const bool has_grad = !p.external && (role == StoreRole::trainable || p.global_shape.ndim == 1);
    grad_at_.push_back(has_grad ? grad_numel : -1);
    if (has_grad) grad_numel += p.numel();
  }
  // Frozen: the weights themselves in the compute dtype (no master copy to refresh from).
  master_ = be.alloc(Shape{numel_}, frozen() ? compute_dtype_ : master_dtype);
  grads_ = be.alloc(Shape{grad_numel}, master_dtype);
  if (has_compute_copy()) compute_copy_ = be.alloc(Shape{numel_}, compute_dtype_);
  if (numel_ > 0) be.fill(master_, 0.0);
  if (grad_numel > 0) be.fill(grads_, 0.0);
  if (numel_ > 0 && has_compute_copy()) be.fill(compute_copy_, 0.0);
}

bool ParamStore::contains(std::string_view name) const { return index_.find(name) != index_.end(); }

const ParamInfo& ParamStore::info(std::string_view name) const {
  auto it = index_.find(name);
  LLMPI_CHECK(it != index_.end(), "no parameter named ", name);
  return params_[it->second];
}

Tensor ParamStore::view_of(const Tensor& flat, std::string_view name) const {
  const ParamInfo& p = info(name);
  if (p.external) return Tensor{};
  return flat.slice(p.offset, p.local_shape);
}

Tensor ParamStore::grad_view(std::string_view name) const {
  auto it = index_.find(name);
  LLMPI_CHECK(it != index_.end(), "no parameter named ", name);
  const int64_t at = grad_at_[it->second];
  if (at < 0) return Tensor{};  // a frozen matrix: no gradient
  return grads_.tensor().slice(at, params_[it->second].local_shape);
}

Tensor ParamStore::joint_view(const Tensor& flat, std::span<const std::string> names,
                              Shape shape, bool grads) const {
  LLMPI_CHECK(!names.empty(), "joint view of no parameters");
  auto at = [&](const std::string& n) {
    const ParamInfo& p = info(n);
    return (grads ? grad_at_ : at_)[size_t(&p - params_.data())];
  };
  const int64_t start = at(names[0]);
  if (start < 0) return Tensor{};  // frozen matrices
  int64_t end = start;
  for (const std::string& n : names) {
    const ParamInfo& p = info(n);
    LLMPI_CHECK(at(n) == end, n, " is not stored right after the previous parameter");
    end += p.numel();
  }
  LLMPI_CHECK(shape.numel() == end - start, "joint view ", shape.str(), " of ", end - start,
              " elements");
  return flat.slice(start, shape);
}

Tensor ParamStore::master(std::string_view name) const { return view_of(master(), name); }
Tensor ParamStore::weight(std::string_view name) const { return view_of(compute(), name); }
Tensor ParamStore::weights(std::span<const std::string> names, Shape shape) const {
  return joint_view(compute(), names, shape, false);
}
Tensor ParamStore::grad(std::string_view name) const { return grad_view(name); }
Tensor ParamStore::grads(std::span<const std::string> names, Shape shape) const {
  return joint_view(grads(), names, shape, true);
}

namespace {

// init_value of elements [begin, end) of p's local slab (row-major local order) into out
// (T = the master dtype's C++ type: an f32 master is filled as f32 on the host, halving what
// crosses to the device; the rounding is the same as a device-side conversion).
template <class T>
void init_range(const ParamInfo& p, uint64_t seed, int64_t begin, int64_t end, T* out) {
  const int nd = p.global_shape.ndim;
  std::array<int64_t, Shape::kMaxDims> stride{}, idx{};
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; --d) {
    stride[d] = s;
    s *= p.global_shape[d];
  }
  for (int64_t rest = begin, d = nd - 1; d >= 0; --d) {  // local multi-index of `begin`
    idx[d] = rest % p.local_shape[d];
    rest /= p.local_shape[d];
  }
  for (int64_t i = begin; i < end; ++i) {
    int64_t g = 0;
    for (int d = 0; d < nd; ++d) g += (idx[d] + p.local_start[d]) * stride[d];
    out[i - begin] = static_cast<T>(init_value(p, seed, g));
    for (int d = nd - 1; d >= 0; --d) {  // next local multi-index
      if (++idx[d] < p.local_shape[d]) break;
      idx[d] = 0;
    }
  }
}

// init_range over p's whole local slab, split over the host's threads: normal draws cost tens
// of ns each (1.1e9 for a 1.1B model). Values depend only on (seed, name, global index), not
// on the split.
template <class T>
void init_all(const ParamInfo& p, uint64_t seed, T* out) {
  parallel_ranges(p.numel(), int64_t{1} << 16,
                  [&](int64_t b, int64_t e) { init_range(p, seed, b, e, out + b); });
}

template <class T>
void fill_random_param(Backend& be, const ParamInfo& p, const Tensor& dst, uint64_t seed,
                       std::vector<T>& host) {
  host.resize(static_cast<size_t>(p.numel()));
  init_all(p, seed, host.data());
  Tensor src;
  src.data = host.data();
  src.shape = dst.shape;
  src.dtype = std::is_same_v<T, float> ? DType::f32 : DType::f64;
  src.device = Device::host;
  be.copy(dst, src);
  be.synchronize();  // `host` is reused by the next parameter
}

}  // namespace

void init_values(const ParamInfo& p, uint64_t seed, float* out) { init_all(p, seed, out); }

void ParamStore::init(Backend& be, uint64_t seed) {
  std::vector<float> host_f32;
  std::vector<double> host_f64;
  for (const ParamInfo& p : params_) {
    const Tensor dst = master(p.name);
    if (p.numel() == 0 || p.external) continue;
    if (p.init == InitKind::zeros || p.init == InitKind::ones) {  // constant; normal and uniform per element
      be.fill(dst, init_value(p, seed, 0));
    } else if (master_dtype() == DType::f32 || master_dtype() == DType::bf16) {
      fill_random_param(be, p, dst, seed, host_f32);
    } else {
      fill_random_param(be, p, dst, seed, host_f64);
    }
  }
  refresh_compute(be);
}

void ParamStore::refresh_compute(Backend& be) const {
  if (has_compute_copy() && numel_ > 0) be.copy(compute_copy_, master_);
}

void ParamStore::zero_grads(Backend& be) {
  if (grads_.tensor().numel() > 0) be.fill(grads_, 0.0);
}

}  // namespace llmpi
