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
// refused at once next time. Stats equal the backend's lse, so the own backward kernel
// consumes them directly (the cuDNN backward graph is not built yet; see docs/cuda.md).
#include <cudnn.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "backend/cuda/attention_own.h"

namespace llmpi::cuda {

class CudnnAttention {
 public:
  explicit CudnnAttention(cudaStream_t stream);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Shapes this graph is offered at all (others go straight to the own kernel).
  static bool may_support(const AttentionShape& s);
  // Throws InternalError when cuDNN refuses the shape (and remembers the refusal).
  void forward(void* out, float* lse, const void* qkv, const AttentionShape& s);
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct ForwardGraph;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
  ForwardGraph& graph_for(const AttentionShape& s);
  std::unique_ptr<ForwardGraph> build_forward(const AttentionShape& s, cudnnDataType_t p_type);

  cudaStream_t stream_;
  cudnnHandle_t handle_ = nullptr;
  std::map<Key, std::unique_ptr<ForwardGraph>> plans_;
  std::map<Key, std::string> refused_;
};

}  // namespace llmpi::cuda
