#pragma once
// Causal attention forward through cuDNN's fused flash-attention engine, built with the
// backend graph API (cudnn_graph.h). The engines pattern-match this composite graph
// (scores never leave the chip):
//   S = Q·Kᵀ (f32) → S·scale → select(row ≥ col, S, lowest) → M = rowmax
//   → E = exp(S − M) → Z = rowsum E → Stats = M + log Z (f32, dense [B, Hq, T, 1])
//   → P = E / Z (bf16: with an f32 P the heuristics offer no engine) → O = P·V
// Q, Kᵀ and V are strided views into qkv [B, T, (Hq + 2·Hkv)·D] (no copies); GQA by the
// engines' head broadcast (Hq a multiple of Hkv). One execution plan per (B, T, Hq, Hkv, D),
// built on first use (hundreds of ms) and cached; a shape cuDNN refuses is remembered and
// refused at once next time. Stats equal the backend's lse. With `tune`, every engine config
// the heuristic offers is built and the fastest on the first call's operands kept (printed to
// stderr once per shape); otherwise the heuristic's first.
// Backward, the composite graph cuDNN's flash backward engines recognize:
//   Σ = rowsum(dO ∘ O)·1 (f32 [B, H, T, 1], in scratch)
//   E = exp(select(row ≥ col, Q·Kᵀ·scale − Stats, lowest))          (= the softmax P)
//   dV = Eᵀ·dO      (Eᵀ a bf16 reshape of E)
//   dS = E ∘ (dO·Vᵀ − Σ) · scale
//   dK = dSᵀ·Q      (dSᵀ a bf16 reshape)
//   (grouped kv heads: dV and dK per query head [B, Hq, T, D], then summed over each group
//   of Hq / Hkv heads by a reduction into [B, Hkv, T, D])
//   dQ = dS·K → an f32 accumulator (zeroed scratch) → identity → dQ (bf16)
// K and Vᵀ, like Q and Kᵀ, are strided views of qkv; dQ, dK, dV are strided views of dqkv.
#include <cudnn.h>

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>

#include "backend/cuda/attention_own.h"

namespace llmpi::cuda {

class CudnnAttention {
 public:
  CudnnAttention(cudaStream_t stream, bool tune);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Shapes this graph is offered at all (others go straight to the own kernel).
  static bool may_support(const AttentionShape& s);
  // Throws InternalError when cuDNN refuses the shape (and remembers the refusal).
  void forward(void* out, float* lse, const void* qkv, const AttentionShape& s);
  // Shapes the backward graph is offered: those of the forward.
  static bool may_support_backward(const AttentionShape& s);
  // dqkv [B, T, W] (overwritten) from dout, qkv, out [B, T, Hq·D] and lse [B, Hq, T]. Throws
  // InternalError when cuDNN refuses the shape (remembered, like the forward's).
  void backward(void* dqkv, const void* dout, const void* qkv, const void* out, const float* lse,
                const AttentionShape& s);
  size_t cached_plans() const { return plans_.size() + backward_plans_.size(); }

 private:
  struct Graph;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
  Graph& graph_for(const AttentionShape& s);
  Graph& backward_graph_for(const AttentionShape& s);
  std::unique_ptr<Graph> build_forward(const AttentionShape& s, cudnnDataType_t p_type);
  std::unique_ptr<Graph> build_backward(const AttentionShape& s);

  // Runs g's plan, tuning it first when asked and not yet tuned; reset() restores what the
  // graph accumulates into (run before each tuning run and before the real one).
  void execute(Graph& g, const char* what, const AttentionShape& s,
               std::span<const int64_t> uids, std::span<void* const> ptrs, void* workspace,
               const std::function<void()>& reset);

  cudaStream_t stream_;
  bool tune_ = false;
  cudnnHandle_t handle_ = nullptr;
  std::map<Key, std::unique_ptr<Graph>> plans_, backward_plans_;
  std::map<Key, std::string> refused_, backward_refused_;
};

}  // namespace llmpi::cuda
