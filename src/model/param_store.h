#pragma once
// ParamStore: every parameter of a model (or of one pipeline stage) in ONE flat buffer, and
// the gradients in a second flat buffer with the identical layout. A parameter is a named
// view [offset, offset + numel) of those buffers, so a ZeRO shard is an offset range and a
// checkpoint writes each parameter's local slab (ParamInfo::local_start, local_shape) as a
// hyperslab of the global tensor. Invariants: parameters are packed in the order given,
// without gaps; grad(name) and weight(name) have the shape and flat offset of master(name).
// Mixed precision (model/dtypes.h): master and grads have the master dtype (f32; f64 in
// gradient checks). The weights read by forward/backward have the compute dtype of the
// backend's device: on the host that is the master itself (same memory); on CUDA a third
// flat buffer holds a bf16 copy, which refresh_compute() (or an AdamW update given the
// compute() slices, see AdamWSlice::compute) brings up to date after the master changes.
// A FROZEN store (LoRA's base weights) holds the weights in the compute dtype only — no master
// copy, no optimizer state — and gradients for its vector parameters only (norm gains,
// biases): a small sink that backward writes and nothing reads (the CUDA norm backward always
// writes its gain gradient). grad() of a frozen matrix is an empty tensor, which the layers
// and the backend's linear ops skip.
#include <array>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace llmpi {

// uniform: U(−init_std, init_std) (init_std is the bound; LoRA A, Kaiming-uniform).
enum class InitKind : uint8_t { normal, zeros, ones, uniform };

struct ParamInfo {
  std::string name;    // global name used in checkpoints, e.g. "layers.3.attn.q.weight"
  Shape global_shape;  // full logical shape
  Shape local_shape;   // this rank's slab (== global_shape without tensor parallelism)
  std::array<int64_t, Shape::kMaxDims> local_start{};  // slab start per dim in the global tensor
  int64_t offset = 0;  // element offset of the slab in the flat buffers (set by ParamStore)
  InitKind init = InitKind::zeros;
  double init_std = 0.0;      // standard deviation for InitKind::normal
  bool weight_decay = false;  // true for weight matrices and embeddings; false for gains, biases
  // An identical copy of this slab is owned by another rank (a tensor-parallel replica such
  // as a norm gain or a replicated kv head, or the last pipeline stage's copy of a tied
  // embedding). Replicas are excluded from gradient norms and from checkpoint writes.
  bool replica = false;
  // The values live outside the store's flat buffers — QLoRA's NF4 base weights
  // (model/nf4_weights.h), which the layers dequantise on use: no element of it here, and
  // weight()/master()/grad() of it are empty. Frozen stores only.
  bool external = false;

  int64_t numel() const { return local_shape.numel(); }
};

class Nf4Weights;

// A parameter whose local slab is the whole global tensor (no sharding).
ParamInfo full_param(std::string name, Shape shape, InitKind init, double init_std,
                     bool weight_decay);

// Value of element `global_index` (row-major in the global shape) of parameter `name` at
// initialization: init_std · N(0,1) drawn from (rng_key(seed, name), global_index), or 0 / 1,
// or init_std · (2u − 1) for uniform u in [0, 1) from the same key and counter.
double init_value(const ParamInfo& p, uint64_t seed, int64_t global_index);
// init_value of every element of p's local slab, row-major, as f32 (what a base loaded from a
// file holds), computed on the host's threads.
void init_values(const ParamInfo& p, uint64_t seed, float* out);

enum class StoreRole : uint8_t { trainable, frozen };

class ParamStore {
 public:
  // Lays out `params` in order (their `offset` is assigned here) and allocates the master
  // and gradient buffers of `master_dtype` on `be`, plus the compute copy when the device's
  // compute dtype differs (compute_dtype(be.device(), master_dtype)). All are zero-filled;
  // call init() for the model init.
  // frozen: the weights in compute_dtype(device, master_dtype) only, gradients of the vector
  // parameters only, in master_dtype (see above).
  ParamStore(Backend& be, std::vector<ParamInfo> params, DType master_dtype,
             StoreRole role = StoreRole::trainable);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // The compute dtype: weights read by forward/backward, and the model's activations.
  DType dtype() const { return compute_dtype_; }
  // Master weights, gradients and optimizer moments.
  DType master_dtype() const { return master_.tensor().dtype; }
  // True when the compute weights are a separate copy (which must be refreshed).
  bool has_compute_copy() const { return compute_dtype_ != master_dtype(); }
  int64_t numel() const { return numel_; }
  bool frozen() const { return role_ == StoreRole::frozen; }
  // The NF4 weights of the external parameters (not owned; set before a model binds).
  void attach_nf4(const Nf4Weights* q) { nf4_ = q; }
  const Nf4Weights* nf4() const { return nf4_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  bool contains(std::string_view name) const;
  const ParamInfo& info(std::string_view name) const;  // LLMPI_CHECK that it exists

  // Master parameters: what the optimizer updates and checkpoints hold. [numel()] flat.
  const Tensor& master() const { return master_.tensor(); }
  Tensor master(std::string_view name) const;
  // Weights read by forward/backward, [numel()] flat in the compute dtype (the master itself
  // when has_compute_copy() is false).
  const Tensor& compute() const {
    return has_compute_copy() ? compute_copy_.tensor() : master_.tensor();
  }
  Tensor weight(std::string_view name) const;
  // Several parameters stored adjacently (in this order) viewed as one tensor of `shape`,
  // e.g. q, k, v weights as one packed [(Hq + 2·Hkv)·D, C] matrix.
  Tensor weights(std::span<const std::string> names, Shape shape) const;
  // Gradients, same layout as master. [numel()] flat. (Frozen: the sink of the vector
  // parameters' gradients, packed in parameter order; grad()/grads() of a matrix is empty.)
  const Tensor& grads() const { return grads_.tensor(); }
  Tensor grad(std::string_view name) const;
  Tensor grads(std::span<const std::string> names, Shape shape) const;

  // Model init of the local slabs from global coordinates (see init_value): identical values
  // under every parallel layout.
  // Ends with refresh_compute().
  void init(Backend& be, uint64_t seed);
  void zero_grads(Backend& be);
  // compute = master, rounded to the compute dtype (one conversion over the flat buffer);
  // nothing when there is no separate copy. Call after anything writes the master other
  // than an AdamW update that was given the compute slices (loads, ZeRO gathers).
  void refresh_compute(Backend& be) const;

 private:
  Tensor view_of(const Tensor& flat, std::string_view name) const;
  // grads: offsets of the gradient buffer (which a frozen store packs differently).
  Tensor joint_view(const Tensor& flat, std::span<const std::string> names, Shape shape,
                    bool grads) const;

  Tensor grad_view(std::string_view name) const;

  std::vector<ParamInfo> params_;
  StoreRole role_ = StoreRole::trainable;
  const Nf4Weights* nf4_ = nullptr;
  std::vector<int64_t> at_;  // offset of each parameter's values; -1: external
  std::vector<int64_t> grad_at_;  // offset of each parameter's gradient; -1: none (frozen matrix)
  std::map<std::string, size_t, std::less<>> index_;
  int64_t numel_ = 0;
  DType compute_dtype_ = DType::f32;
  Buffer master_, grads_;
  Buffer compute_copy_;  // empty unless the compute dtype differs from the master dtype
};

}  // namespace llmpi
