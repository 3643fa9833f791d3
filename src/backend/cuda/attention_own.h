#pragma once
// The own flash-attention kernels (attention_own.cu): causal, grouped-query, bf16 in and
// out, f32 softmax statistics, never storing the T×T scores. Forward: used when cuDNN refuses a
// shape or when LLMPI_ATTENTION=own. Backward: used where the tensor-core kernel
// (attention_tc.h) has no variant (D ∉ {32, 64, 96, 128}, pre-sm_80) or
// LLMPI_ATTENTION_BACKWARD=simt. Layouts as backend.h: qkv/dqkv [B, T, (Hq + 2·Hkv)·D],
// out/dout [B, T, Hq·D], lse [B, Hq, T] (natural log of Σ exp(scaled score)); doc_start
// i32 [B·T] device memory (packed documents, backend.h) or nullptr.
#include <cuda_runtime.h>

#include <cstdint>

namespace llmpi::cuda {

struct AttentionShape {
  int64_t B = 0, T = 0, Hq = 0, Hkv = 0, D = 0;
};

// D even and at most kOwnAttentionMaxD.
constexpr int64_t kOwnAttentionMaxD = 256;
bool own_attention_supports(const AttentionShape& s);

void own_attention_forward(void* out, float* lse, const void* qkv, const AttentionShape& s,
                           const int32_t* doc_start, cudaStream_t stream);
// delta: f32 scratch of B·Hq·T values (Δ = rowsum(dout ∘ out)).
void own_attention_backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                            const float* lse, float* delta, const AttentionShape& s,
                            const int32_t* doc_start, cudaStream_t stream);

}  // namespace llmpi::cuda
