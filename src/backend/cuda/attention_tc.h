#pragma once
// Tensor-core flash-attention backward (attention_tc.cu): causal, grouped-query, bf16 in and
// out, recomputing P = exp(scale·q·kᵀ − lse) in 64×64 tiles with bf16 WMMA (f32 accumulate);
// the T×T scores never reach device memory. Same contract as own_attention_backward
// (attention_own.h): dqkv [B, T, (Hq + 2·Hkv)·D] is overwritten, lse [B, Hq, T] is the
// forward's (own or cuDNN) log-sum-exp, delta is f32 scratch of B·Hq·T values, doc_start the
// packed documents' starts (i32 [B·T], device) or nullptr.
// Two deterministic kernels, no atomics: dk/dv (one block per 64 keys of a kv head, looping
// over the group's query heads and the query tiles at or below the diagonal) and dq (one
// block per 64 queries of a query head, looping over the key tiles up to the diagonal).
#include <cuda_runtime.h>

#include "backend/cuda/attention_own.h"

namespace llmpi::cuda {

// Head dims with a compiled tensor-core kernel (32, 64, 96, 128), on sm_80 or newer.
bool tc_attention_supports(const AttentionShape& s);

void tc_attention_backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                           const float* lse, float* delta, const AttentionShape& s,
                           const int32_t* doc_start, cudaStream_t stream);

}  // namespace llmpi::cuda
