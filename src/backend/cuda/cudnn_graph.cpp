// cuDNN backend-API RAII layer (cudnn_graph.h).
#include "backend/cuda/cudnn_graph.h"

#include <algorithm>

#include "backend/cuda/candidate_timer.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace llmpi::cuda::cudnn {

namespace {
// The graph and plan "handle" attributes: required by cuDNN 9.14, deprecated (still honoured)
// in later 9.x headers. Named by value to keep the deprecation warning out of the build.
constexpr auto kOperationGraphHandle = static_cast<cudnnBackendAttributeName_t>(800);
constexpr auto kExecutionPlanHandle = static_cast<cudnnBackendAttributeName_t>(400);
}  // namespace

Descriptor::Descriptor(cudnnBackendDescriptorType_t type) {
  LLMPI_CUDNN(cudnnBackendCreateDescriptor(type, &d_));
}

Descriptor::~Descriptor() {
  if (d_) cudnnBackendDestroyDescriptor(d_);
}

Descriptor& Descriptor::operator=(Descriptor&& o) noexcept {
  if (this != &o) {
    if (d_) cudnnBackendDestroyDescriptor(d_);
    d_ = o.d_;
    o.d_ = nullptr;
  }
  return *this;
}

Descriptor& Descriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                            int64_t count, const void* values) {
  LLMPI_CUDNN(cudnnBackendSetAttribute(d_, name, type, count, values));
  return *this;
}
Descriptor& Descriptor::set_i64(cudnnBackendAttributeName_t name, int64_t v) {
  return set(name, CUDNN_TYPE_INT64, 1, &v);
}
Descriptor& Descriptor::set_i64s(cudnnBackendAttributeName_t name, std::span<const int64_t> v) {
  return set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(v.size()), v.data());
}
Descriptor& Descriptor::set_dtype(cudnnBackendAttributeName_t name, cudnnDataType_t t) {
  return set(name, CUDNN_TYPE_DATA_TYPE, 1, &t);
}
Descriptor& Descriptor::set_bool(cudnnBackendAttributeName_t name, bool v) {
  return set(name, CUDNN_TYPE_BOOLEAN, 1, &v);
}
Descriptor& Descriptor::set_desc(cudnnBackendAttributeName_t name, const Descriptor& d) {
  cudnnBackendDescriptor_t raw = d.get();
  return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw);
}
Descriptor& Descriptor::finalize() {
  LLMPI_CUDNN(cudnnBackendFinalize(d_));
  return *this;
}

Descriptor tensor(int64_t uid, cudnnDataType_t type, const Dims& dims, const Dims& strides,
                  bool is_virtual, bool by_value) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set_dtype(CUDNN_ATTR_TENSOR_DATA_TYPE, type)
      .set_i64s(CUDNN_ATTR_TENSOR_DIMENSIONS, dims)
      .set_i64s(CUDNN_ATTR_TENSOR_STRIDES, strides)
      .set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid)
      .set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16)
      .set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, is_virtual);
  if (by_value) t.set_bool(CUDNN_ATTR_TENSOR_IS_BY_VALUE, true);
  t.finalize();
  return t;
}

Descriptor matmul(const Descriptor& a, const Descriptor& b, const Descriptor& c) {
  Descriptor desc(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  desc.set_dtype(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT).finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a)
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b)
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c)
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, desc)
      .finalize();
  return op;
}

Descriptor pointwise(cudnnPointwiseMode_t mode, const Descriptor& x, const Descriptor* b,
                     const Descriptor& y, const Descriptor* t, cudnnDataType_t math,
                     int64_t axis) {
  Descriptor desc(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  desc.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
      .set_dtype(CUDNN_ATTR_POINTWISE_MATH_PREC, math);
  if (axis >= 0) desc.set_i64(CUDNN_ATTR_POINTWISE_AXIS, axis);
  desc.finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, desc)
      .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
  if (b) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
  if (t) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t);
  op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y).finalize();
  return op;
}

Descriptor reduction(cudnnReduceTensorOp_t red, const Descriptor& x, const Descriptor& y) {
  Descriptor desc(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  desc.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &red)
      .set_dtype(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT)
      .finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x)
      .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y)
      .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, desc)
      .finalize();
  return op;
}

Descriptor reshape(const Descriptor& x, const Descriptor& y) {
  Descriptor op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x)
      .set_desc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y)
      .finalize();
  return op;
}

namespace {
// cuDNN's global index of the engine behind an engine config (-1 when it will not say).
int64_t engine_index(const Descriptor& config) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  cudnnBackendDescriptor_t raw = engine.get();
  int64_t n = 0, index = -1;
  if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &raw) != CUDNN_STATUS_SUCCESS)
    return -1;
  if (cudnnBackendGetAttribute(raw, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n,
                               &index) != CUDNN_STATUS_SUCCESS)
    return -1;
  return index;
}

// The operands of one execution: uids[i] bound to ptrs[i], and the workspace.
Descriptor variant_pack(std::span<const int64_t> uids, std::span<void* const> ptrs,
                        void* workspace) {
  LLMPI_CHECK(uids.size() == ptrs.size(), "cuDNN variant pack: ", uids.size(), " uids, ",
              ptrs.size(), " pointers");
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
           static_cast<int64_t>(uids.size()), uids.data())
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
           static_cast<int64_t>(ptrs.size()), ptrs.data())
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace)
      .finalize();
  return pack;
}
}  // namespace

Plan::Plan(cudnnHandle_t handle, std::span<const Descriptor* const> ops, const std::string& what,
           PlanCandidates candidates) {
  std::vector<cudnnBackendDescriptor_t> raw;
  for (const Descriptor* d : ops) raw.push_back(d->get());
  graph_ = Descriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  graph_.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
             static_cast<int64_t>(raw.size()), raw.data())
      .set(kOperationGraphHandle, CUDNN_TYPE_HANDLE, 1, &handle)
      .finalize();

  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph_)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode)
      .finalize();
  int64_t available = 0;
  LLMPI_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &available, nullptr));
  if (available <= 0) throw InternalError("cuDNN has no engine for the " + what + " graph");
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw_configs;
  for (int64_t i = 0; i < available; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    raw_configs.push_back(configs.back().get());
  }
  int64_t returned = 0;
  LLMPI_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, available, &returned,
                                       raw_configs.data()));
  std::string reasons;
  for (int64_t i = 0; i < returned; ++i) {
    try {
      Candidate c;
      c.plan = Descriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      c.plan.set(kExecutionPlanHandle, CUDNN_TYPE_HANDLE, 1, &handle)
          .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i])
          .finalize();
      int64_t count = 0;
      LLMPI_CUDNN(cudnnBackendGetAttribute(c.plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                           CUDNN_TYPE_INT64, 1, &count, &c.workspace));
      c.engine = engine_index(configs[i]);
      candidates_.push_back(std::move(c));
      if (candidates == PlanCandidates::first) return;
    } catch (const InternalError& e) {
      reasons += "\n  engine config " + std::to_string(i) + ": " + e.what();
    }
  }
  if (!candidates_.empty()) return;
  throw InternalError(detail::concat("cuDNN could not build a plan for the ", what, " graph (",
                                     returned, " of ", available, " heuristic configs)",
                                     reasons));
}

int64_t Plan::workspace_bytes() const {
  if (tuned()) return candidates_[chosen_].workspace;
  int64_t most = 0;
  for (const Candidate& c : candidates_) most = std::max(most, c.workspace);
  return most;
}

bool Plan::run(cudnnHandle_t handle, const Candidate& c, std::span<const int64_t> uids,
               std::span<void* const> ptrs, void* workspace) const {
  const Descriptor pack = variant_pack(uids, ptrs, workspace);
  return cudnnBackendExecute(handle, c.plan.get(), pack.get()) == CUDNN_STATUS_SUCCESS;
}

std::string Plan::tune(cudnnHandle_t handle, cudaStream_t stream, std::span<const int64_t> uids,
                       std::span<void* const> ptrs, void* workspace,
                       const std::function<void()>& reset, int reps) {
  CandidateTimer timer(stream);
  std::vector<float> ms(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i)
    ms[i] = timer.best_ms(reps, [&] { return run(handle, candidates_[i], uids, ptrs, workspace); },
                          reset);
  const size_t chosen = fastest(ms);
  if (chosen == candidates_.size())
    throw InternalError("cuDNN: no candidate plan of the graph executes");
  chosen_ = chosen;
  tuned_ = true;
  return timing_report(ms, chosen,
                       [&](size_t i) { return detail::concat("engine ", candidates_[i].engine); });
}

void Plan::execute(cudnnHandle_t handle, std::span<const int64_t> uids,
                   std::span<void* const> ptrs, void* workspace) const {
  const Descriptor pack = variant_pack(uids, ptrs, workspace);
  LLMPI_CUDNN(cudnnBackendExecute(handle, candidates_[chosen_].plan.get(), pack.get()));
}

}  // namespace llmpi::cuda::cudnn
