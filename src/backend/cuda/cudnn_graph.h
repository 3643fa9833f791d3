#pragma once
// A small RAII layer over cuDNN's backend (graph) API, for the fused attention graphs:
// Descriptor owns one cudnnBackendDescriptor_t (move-only) and sets attributes fluently;
// the free functions build the node kinds the graphs use (tensor, matmul, pointwise,
// reduction), the operation graph, and an execution plan chosen by cuDNN's heuristics;
// Plan::execute binds device pointers by tensor uid. Every failing call throws
// InternalError with cuDNN's message (cuda_check.h), so a caller can treat "cuDNN refuses
// this graph" as recoverable. Only APIs present in cuDNN 9.14 are used.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace llmpi::cuda::cudnn {

class Descriptor {
 public:
  Descriptor() = default;
  explicit Descriptor(cudnnBackendDescriptorType_t type);
  ~Descriptor();
  Descriptor(Descriptor&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  Descriptor& operator=(Descriptor&& o) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }

  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                  int64_t count, const void* values);
  Descriptor& set_i64(cudnnBackendAttributeName_t name, int64_t v);
  Descriptor& set_i64s(cudnnBackendAttributeName_t name, std::span<const int64_t> v);
  Descriptor& set_dtype(cudnnBackendAttributeName_t name, cudnnDataType_t t);
  Descriptor& set_bool(cudnnBackendAttributeName_t name, bool v);
  Descriptor& set_desc(cudnnBackendAttributeName_t name, const Descriptor& d);
  Descriptor& finalize();

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

using Dims = std::array<int64_t, 4>;

// A tensor node: uid, dtype, 4-d dims and strides (elements). Virtual tensors live only
// inside the fused kernel; by-value tensors are host scalars passed in the variant pack.
Descriptor tensor(int64_t uid, cudnnDataType_t type, const Dims& dims, const Dims& strides,
                  bool is_virtual, bool by_value = false);

// c = a · b over the last two dims (batch dims broadcast), f32 compute.
Descriptor matmul(const Descriptor& a, const Descriptor& b, const Descriptor& c);
// y = mode(x[, b[, t]]) with math precision `math` (f32 by default); `axis` for GEN_INDEX.
Descriptor pointwise(cudnnPointwiseMode_t mode, const Descriptor& x, const Descriptor* b,
                     const Descriptor& y, const Descriptor* t = nullptr,
                     cudnnDataType_t math = CUDNN_DATA_FLOAT, int64_t axis = -1);
// y = reduce(x) over the dims where y has extent 1, f32 compute.
Descriptor reduction(cudnnReduceTensorOp_t op, const Descriptor& x, const Descriptor& y);
// y = x viewed with y's dims and strides (e.g. a transpose: swapped dims and strides).
Descriptor reshape(const Descriptor& x, const Descriptor& y);

// An execution plan: built once per graph, run with fresh pointers each call.
// By default the first of the heuristic's engine configs that finalizes is used. With
// `candidates` = all, every config that finalizes is kept, and tune() times each on real
// operands once and keeps the fastest (a timing-dependent choice: callers use it only where
// the run is not required to be bitwise reproducible).
enum class PlanCandidates : uint8_t { first, all };

class Plan {
 public:
  // Finalizes the operation graph of `ops` and the heuristic's engine configs in order;
  // throws InternalError naming `what` when none finalizes.
  Plan(cudnnHandle_t handle, std::span<const Descriptor* const> ops, const std::string& what,
       PlanCandidates candidates = PlanCandidates::first);
  // Workspace of the chosen config; before tune() the largest over the candidates, so a
  // workspace of this size serves tune() too.
  int64_t workspace_bytes() const;
  bool tuned() const { return tuned_ || candidates_.size() == 1; }
  // Runs every candidate `reps` times on these operands (reset() before each run, e.g. to
  // zero an accumulator the graph adds into), keeps the fastest, and returns a one-line
  // report ("engine 7: 1.234 ms (chosen), engine 9: ..."). A candidate whose execution fails
  // is skipped. Leaves the outputs undefined: the caller executes once more afterwards.
  std::string tune(cudnnHandle_t handle, cudaStream_t stream, std::span<const int64_t> uids,
                   std::span<void* const> ptrs, void* workspace,
                   const std::function<void()>& reset, int reps = 3);
  // uids[i] is bound to ptrs[i] (device memory, or host memory for by-value tensors).
  void execute(cudnnHandle_t handle, std::span<const int64_t> uids, std::span<void* const> ptrs,
               void* workspace) const;

 private:
  struct Candidate {
    Descriptor plan;
    int64_t workspace = 0;
    int64_t engine = -1;  // cuDNN's global engine index (reports only)
  };
  bool run(cudnnHandle_t handle, const Candidate& c, std::span<const int64_t> uids,
           std::span<void* const> ptrs, void* workspace) const;

  Descriptor graph_;
  std::vector<Candidate> candidates_;
  size_t chosen_ = 0;
  bool tuned_ = false;
};

}  // namespace llmpi::cuda::cudnn
