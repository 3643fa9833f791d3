// cuDNN fused causal attention forward (attention_cudnn.h): graph construction, plan cache,
// execution.
#include "backend/cuda/attention_cudnn.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cudnn_graph.h"
#include "core/error.h"

namespace llmpi::cuda {

namespace {
// Tensor uids of the forward graph.
enum Uid : int64_t { kQ = 1, kKt, kV, kO, kStats, kScale, kNegInf, kVirtual = 100 };
// Tensor uids of the backward graph.
enum BwdUid : int64_t {
  bQ = 1, bKt, bK, bVt, bO, bdO, bStats, bdQ, bdK, bdV, bSum, bdQAcc, bScale, bNegInf, bOne,
  bVirtual = 100
};
}  // namespace

struct CudnnAttention::Graph {
  std::vector<cudnn::Descriptor> nodes;  // kept alive with the plan
  std::unique_ptr<cudnn::Plan> plan;
};

namespace {

// Collects a graph's descriptors in the graph's own node storage (which must never
// reallocate: nodes refer to tensors by reference) and its operations in order.
struct GraphBuilder {
  std::vector<cudnn::Descriptor>& nodes;
  int64_t next_uid;  // virtual tensors get consecutive uids from here
  std::vector<const cudnn::Descriptor*> ops;

  GraphBuilder(std::vector<cudnn::Descriptor>& storage, int64_t first_virtual_uid)
      : nodes(storage), next_uid(first_virtual_uid) {
    nodes.reserve(64);
  }
  const cudnn::Descriptor& add(cudnn::Descriptor d) {
    LLMPI_CHECK(nodes.size() < nodes.capacity(), "cuDNN graph: node storage would reallocate");
    nodes.push_back(std::move(d));
    return nodes.back();
  }
  const cudnn::Descriptor& real(int64_t uid, cudnnDataType_t t, const cudnn::Dims& d,
                                const cudnn::Dims& st) {
    return add(cudnn::tensor(uid, t, d, st, false));
  }
  // A by-value f32 scalar.
  const cudnn::Descriptor& scalar(int64_t uid) {
    const cudnn::Dims one{1, 1, 1, 1};
    return add(cudnn::tensor(uid, CUDNN_DATA_FLOAT, one, one, false, true));
  }
  const cudnn::Descriptor& virt(cudnnDataType_t t, const cudnn::Dims& d, const cudnn::Dims& st) {
    return add(cudnn::tensor(next_uid++, t, d, st, true));
  }
  void op(cudnn::Descriptor d) { ops.push_back(&add(std::move(d))); }
  // The causal mask: y = select(row ≥ col, x, lowest) over the last two dims of x.
  void causal_mask(const cudnn::Descriptor& x, const cudnn::Descriptor& lowest,
                   const cudnn::Descriptor& y, const cudnn::Dims& d, const cudnn::Dims& st) {
    const auto& row = virt(CUDNN_DATA_INT32, d, st);
    const auto& col = virt(CUDNN_DATA_INT32, d, st);
    const auto& keep = virt(CUDNN_DATA_BOOLEAN, d, st);
    op(cudnn::pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, row, nullptr, CUDNN_DATA_INT32, 2));
    op(cudnn::pointwise(CUDNN_POINTWISE_GEN_INDEX, x, nullptr, col, nullptr, CUDNN_DATA_INT32, 3));
    op(cudnn::pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, keep, nullptr, CUDNN_DATA_BOOLEAN));
    op(cudnn::pointwise(CUDNN_POINTWISE_BINARY_SELECT, x, &lowest, y, &keep));
  }
};

}  // namespace

CudnnAttention::CudnnAttention(cudaStream_t stream, bool tune) : stream_(stream), tune_(tune) {
  LLMPI_CUDNN(cudnnCreate(&handle_));
  LLMPI_CUDNN(cudnnSetStream(handle_, stream_));
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();
  if (handle_) cudnnDestroy(handle_);
}

bool CudnnAttention::may_support(const AttentionShape& s) {
  return s.D % 8 == 0 && s.D <= 256 && s.T % 64 == 0 && s.Hq % s.Hkv == 0 && s.B * s.T > 0;
}

std::unique_ptr<CudnnAttention::Graph> CudnnAttention::build_forward(
    const AttentionShape& s, cudnnDataType_t p_type) {
  const int64_t B = s.B, T = s.T, Hq = s.Hq, Hkv = s.Hkv, D = s.D;
  const int64_t W = (Hq + 2 * Hkv) * D;
  using cudnn::Dims;
  auto g = std::make_unique<Graph>();
  GraphBuilder b(g->nodes, kVirtual);
  const Dims scores{B, Hq, T, T}, scores_st{Hq * T * T, T * T, T, 1};
  const Dims rows{B, Hq, T, 1}, rows_st{Hq * T, T, 1, 1};
  const auto f32 = CUDNN_DATA_FLOAT, bf16 = CUDNN_DATA_BFLOAT16;
  // Strided views into qkv [B, T, W] (Kᵀ by swapped strides) and out [B, T, Hq·D].
  const auto& q = b.real(kQ, bf16, {B, Hq, T, D}, {T * W, D, W, 1});
  const auto& kt = b.real(kKt, bf16, {B, Hkv, D, T}, {T * W, D, 1, W});
  const auto& v = b.real(kV, bf16, {B, Hkv, T, D}, {T * W, D, W, 1});
  const auto& o = b.real(kO, bf16, {B, Hq, T, D}, {T * Hq * D, D, Hq * D, 1});
  const auto& stats = b.real(kStats, f32, rows, rows_st);
  const auto& scale = b.scalar(kScale);
  const auto& neg_inf = b.scalar(kNegInf);

  const auto& s_raw = b.virt(f32, scores, scores_st);
  const auto& s_scaled = b.virt(f32, scores, scores_st);
  const auto& s_masked = b.virt(f32, scores, scores_st);
  const auto& row_max = b.virt(f32, rows, rows_st);
  const auto& shifted = b.virt(f32, scores, scores_st);
  const auto& e = b.virt(f32, scores, scores_st);
  const auto& z = b.virt(f32, rows, rows_st);
  const auto& log_z = b.virt(f32, rows, rows_st);
  const auto& p = b.virt(p_type, scores, scores_st);
  b.op(cudnn::matmul(q, kt, s_raw));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, s_raw, &scale, s_scaled));
  b.causal_mask(s_scaled, neg_inf, s_masked, scores, scores_st);
  b.op(cudnn::reduction(CUDNN_REDUCE_TENSOR_MAX, s_masked, row_max));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_SUB, s_masked, &row_max, shifted));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, e));
  b.op(cudnn::reduction(CUDNN_REDUCE_TENSOR_ADD, e, z));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_LOG, z, nullptr, log_z));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_ADD, row_max, &log_z, stats));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_DIV, e, &z, p));
  b.op(cudnn::matmul(p, v, o));
  g->plan = std::make_unique<cudnn::Plan>(
      handle_, b.ops, "causal attention forward",
      tune_ ? cudnn::PlanCandidates::all : cudnn::PlanCandidates::first);
  return g;
}

bool CudnnAttention::may_support_backward(const AttentionShape& s) { return may_support(s); }

std::unique_ptr<CudnnAttention::Graph> CudnnAttention::build_backward(
    const AttentionShape& s) {
  const int64_t B = s.B, T = s.T, H = s.Hq, Hkv = s.Hkv, D = s.D;
  const int64_t W = (H + 2 * Hkv) * D;
  using cudnn::Dims;
  auto g = std::make_unique<Graph>();
  GraphBuilder b(g->nodes, bVirtual);
  const auto f32 = CUDNN_DATA_FLOAT, bf16 = CUDNN_DATA_BFLOAT16;
  const Dims scores{B, H, T, T}, scores_st{H * T * T, T * T, T, 1};
  const Dims scores_t_st{H * T * T, T * T, 1, T};  // the transpose of a scores tensor
  const Dims rows{B, H, T, 1}, rows_st{H * T, T, 1, 1};
  const Dims bhtd{B, H, T, D}, kv_td{B, Hkv, T, D}, kv_dt{B, Hkv, D, T};
  const Dims qkv_st{T * W, D, W, 1}, qkv_t_st{T * W, D, 1, W}, out_st{T * H * D, D, H * D, 1};
  const Dims dense_st{H * T * D, T * D, D, 1};
  const auto& q = b.real(bQ, bf16, bhtd, qkv_st);
  const auto& kt = b.real(bKt, bf16, kv_dt, qkv_t_st);
  const auto& k = b.real(bK, bf16, kv_td, qkv_st);
  const auto& vt = b.real(bVt, bf16, kv_dt, qkv_t_st);
  const auto& o = b.real(bO, bf16, bhtd, out_st);
  const auto& d_o = b.real(bdO, bf16, bhtd, out_st);
  const auto& stats = b.real(bStats, f32, rows, rows_st);
  const auto& dq = b.real(bdQ, bf16, bhtd, qkv_st);
  const auto& dk = b.real(bdK, bf16, kv_td, qkv_st);
  const auto& dv = b.real(bdV, bf16, kv_td, qkv_st);
  const auto& sum = b.real(bSum, f32, rows, rows_st);
  const auto& dq_acc = b.real(bdQAcc, f32, bhtd, dense_st);
  const auto& scale = b.scalar(bScale);
  const auto& neg_inf = b.scalar(bNegInf);
  const auto& unit = b.scalar(bOne);

  // Σ = rowsum(dO ∘ O) · 1
  const auto& do_o = b.virt(f32, bhtd, dense_st);
  const auto& do_o_sum = b.virt(f32, rows, rows_st);
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, d_o, &o, do_o));
  b.op(cudnn::reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, do_o_sum));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, do_o_sum, &unit, sum));
  // E = exp(select(row ≥ col, Q·Kᵀ·scale − Stats, lowest))
  const auto& s_raw = b.virt(f32, scores, scores_st);
  const auto& s_scaled = b.virt(f32, scores, scores_st);
  const auto& s_shift = b.virt(f32, scores, scores_st);
  const auto& s_masked = b.virt(f32, scores, scores_st);
  const auto& e = b.virt(f32, scores, scores_st);
  b.op(cudnn::matmul(q, kt, s_raw));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, s_raw, &scale, s_scaled));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_SUB, s_scaled, &stats, s_shift));
  b.causal_mask(s_shift, neg_inf, s_masked, scores, scores_st);
  b.op(cudnn::pointwise(CUDNN_POINTWISE_EXP, s_masked, nullptr, e));
  // Grouped kv heads: the per-query-head products, summed over each group of Hq / Hkv heads.
  auto per_head_then_group_sum = [&](const cudnn::Descriptor& x, const cudnn::Descriptor& y,
                                     const cudnn::Descriptor& grouped) {
    if (H == Hkv) {
      b.op(cudnn::matmul(x, y, grouped));
      return;
    }
    const auto& full = b.virt(bf16, bhtd, dense_st);
    b.op(cudnn::matmul(x, y, full));
    b.op(cudnn::reduction(CUDNN_REDUCE_TENSOR_ADD, full, grouped));
  };
  // dV = Eᵀ·dO
  const auto& e_t = b.virt(bf16, scores, scores_t_st);
  b.op(cudnn::reshape(e, e_t));
  per_head_then_group_sum(e_t, d_o, dv);
  // dS = E ∘ (dO·Vᵀ − Σ) · scale
  const auto& dp = b.virt(f32, scores, scores_st);
  const auto& dp_sub = b.virt(f32, scores, scores_st);
  const auto& ds_unscaled = b.virt(f32, scores, scores_st);
  const auto& ds = b.virt(f32, scores, scores_st);
  b.op(cudnn::matmul(d_o, vt, dp));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_SUB, dp, &sum, dp_sub));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, dp_sub, &e, ds_unscaled));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_MUL, ds_unscaled, &scale, ds));
  // dK = dSᵀ·Q
  const auto& ds_t = b.virt(bf16, scores, scores_t_st);
  b.op(cudnn::reshape(ds, ds_t));
  per_head_then_group_sum(ds_t, q, dk);
  // dQ = dS·K through the f32 accumulator
  b.op(cudnn::matmul(ds, k, dq_acc));
  b.op(cudnn::pointwise(CUDNN_POINTWISE_IDENTITY, dq_acc, nullptr, dq));
  g->plan = std::make_unique<cudnn::Plan>(
      handle_, b.ops, "causal attention backward",
      tune_ ? cudnn::PlanCandidates::all : cudnn::PlanCandidates::first);
  return g;
}

CudnnAttention::Graph& CudnnAttention::backward_graph_for(const AttentionShape& s) {
  const Key key{s.B, s.T, s.Hq, s.Hkv, s.D};
  if (auto it = backward_plans_.find(key); it != backward_plans_.end()) return *it->second;
  if (auto it = backward_refused_.find(key); it != backward_refused_.end())
    throw InternalError(it->second);
  try {
    return *backward_plans_.emplace(key, build_backward(s)).first->second;
  } catch (const InternalError& e) {
    const std::string msg = detail::concat("cuDNN refused causal attention backward for B=", s.B,
                                           " T=", s.T, " H=", s.Hq, " D=", s.D, ": ", e.what());
    backward_refused_.emplace(key, msg);
    throw InternalError(msg);
  }
}

void CudnnAttention::backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                              const float* lse, const AttentionShape& s) {
  LLMPI_CHECK(may_support_backward(s), "cuDNN attention backward offered an unsupported shape");
  Graph& g = backward_graph_for(s);
  const int64_t D = s.D, H = s.Hq, Hkv = s.Hkv;
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  float neg_inf = std::numeric_limits<float>::lowest();
  float unit = 1.0f;
  const int64_t bytes = 2;  // bf16
  auto* base = static_cast<char*>(const_cast<void*>(qkv));
  auto* dbase = static_cast<char*>(dqkv);
  void* k = base + H * D * bytes;
  void* v = base + (H + Hkv) * D * bytes;
  // Scratch: Σ [B, H, T] and the dQ accumulator [B, H, T, D] (f32, dense, zeroed), then the
  // plan's workspace, each 256-byte aligned.
  const size_t rows = size_t(s.B * H * s.T), align = 256;
  const size_t sum_bytes = (rows * 4 + align - 1) / align * align;
  const size_t acc_bytes = (rows * size_t(D) * 4 + align - 1) / align * align;
  Scratch scratch(stream_, sum_bytes + acc_bytes + size_t(g.plan->workspace_bytes()));
  char* sum = scratch.as<char>();
  char* acc = sum + sum_bytes;
  char* workspace = acc + acc_bytes;
  const int64_t uids[] = {bQ,  bKt,  bK,   bVt,  bO,  bdO,    bStats,  bdQ,
                          bdK, bdV,  bSum, bdQAcc, bScale, bNegInf, bOne};
  void* const ptrs[] = {base,
                        k,
                        k,
                        v,
                        const_cast<void*>(out),
                        const_cast<void*>(dout),
                        const_cast<float*>(lse),
                        dbase,
                        dbase + H * D * bytes,
                        dbase + (H + Hkv) * D * bytes,
                        sum,
                        acc,
                        &scale,
                        &neg_inf,
                        &unit};
  execute(g, "backward", s, uids, ptrs, workspace,
          [&] { LLMPI_CUDA(cudaMemsetAsync(acc, 0, acc_bytes, stream_)); });
}

CudnnAttention::Graph& CudnnAttention::graph_for(const AttentionShape& s) {
  const Key key{s.B, s.T, s.Hq, s.Hkv, s.D};
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
  if (auto it = refused_.find(key); it != refused_.end()) throw InternalError(it->second);
  // P (the softmax output, bmm2's A operand) in bf16 as the fused engines expect for 16-bit
  // inputs; f32 as a second try.
  std::string reasons;
  for (cudnnDataType_t p_type : {CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT}) {
    try {
      return *plans_.emplace(key, build_forward(s, p_type)).first->second;
    } catch (const InternalError& e) {
      reasons += detail::concat("\n  P ", p_type == CUDNN_DATA_FLOAT ? "f32" : "bf16", ": ",
                                e.what());
    }
  }
  const std::string msg = detail::concat("cuDNN refused causal attention forward for B=", s.B,
                                         " T=", s.T, " Hq=", s.Hq, " Hkv=", s.Hkv, " D=", s.D,
                                         ":", reasons);
  refused_.emplace(key, msg);
  throw InternalError(msg);
}

void CudnnAttention::forward(void* out, float* lse, const void* qkv, const AttentionShape& s) {
  LLMPI_CHECK(may_support(s), "cuDNN attention offered an unsupported shape");
  Graph& g = graph_for(s);
  const int64_t D = s.D;
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  float neg_inf = std::numeric_limits<float>::lowest();
  auto* base = static_cast<char*>(const_cast<void*>(qkv));
  const int64_t int_bytes = 2;  // bf16
  void* k = base + s.Hq * D * int_bytes;
  void* v = base + (s.Hq + s.Hkv) * D * int_bytes;
  const int64_t uids[] = {kQ, kKt, kV, kO, kStats, kScale, kNegInf};
  void* const ptrs[] = {base, k, v, out, lse, &scale, &neg_inf};
  Scratch workspace(stream_, static_cast<size_t>(g.plan->workspace_bytes()));
  execute(g, "forward", s, uids, ptrs, workspace.as<void>(), [] {});
}

void CudnnAttention::execute(Graph& g, const char* what, const AttentionShape& s,
                             std::span<const int64_t> uids, std::span<void* const> ptrs,
                             void* workspace, const std::function<void()>& reset) {
  if (tune_ && !g.plan->tuned()) {
    const std::string report = g.plan->tune(handle_, stream_, uids, ptrs, workspace, reset);
    std::fprintf(stderr, "llmpi: cuDNN causal attention %s B=%lld T=%lld Hq=%lld Hkv=%lld D=%lld: %s\n",
                 what, static_cast<long long>(s.B), static_cast<long long>(s.T),
                 static_cast<long long>(s.Hq), static_cast<long long>(s.Hkv),
                 static_cast<long long>(s.D), report.c_str());
  }
  reset();
  g.plan->execute(handle_, uids, ptrs, workspace);
}

}  // namespace llmpi::cuda
