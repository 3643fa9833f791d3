#pragma once
// Causal self-attention, multi-head (gpt2) or grouped-query with RoPE (llama):
//   qkv = x · W_qkvᵀ (+ b)        x: [N, C] normalized input, qkv: [B, T, (Hq + 2·Hkv)·D]
//   rope(q, k) in place (llama)    rotate_half pairs (i, i + D/2), angle p·θ^(-2i/D)
//   a = softmax(q kᵀ/√D, causal) v [B, T, Hq·D]; query head h reads kv head h/(Hq/Hkv)
// Packed documents (AttentionActs::doc_start, backend.h): the position p is t − doc_start and
// attention is blocked across documents; without them p = t and each row is one document.
//   y = a · W_outᵀ (+ b)           y: [N, C]
// Saves qkv (after RoPE), a and the softmax log-sum-exp [B, Hq, T] in AttentionActs; the
// caller keeps x. Backward: out-linear, attention, inverse RoPE on dqkv (the rotation is
// orthogonal, so its transpose is the rotation by -angle), qkv-linear.
// Tensor parallelism: the layer binds whatever head slabs the store holds (Hq/tp query heads
// and the kv heads they read); qkv is then column-parallel and out row-parallel, and y is a
// partial sum over ranks (reduced by the caller, see model/regions.h).
#include <string>

#include "backend/backend.h"
#include "model/linear.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

struct AttentionActs {
  int64_t B = 0, T = 0;
  Buffer qkv;  // [B, T, (Hq + 2·Hkv)·D], q and k rotated (llama)
  Buffer out;  // [B, T, Hq·D] attention output before the out projection
  Buffer lse;  // [B, Hq, T] log-sum-exp of each softmax row (statistics dtype)
  // i32 [B·T] document starts of the micro-batch (a view, not owned; set by the model per
  // micro-batch, see Transformer::set_documents); empty: one document per row.
  Tensor doc_start;
};

struct AttentionScratch {  // backward temporaries, shared by every layer and micro-batch
  Buffer dqkv;  // [B, T, (Hq + 2·Hkv)·D]
  Buffer dout;  // [B, T, Hq·D]
};

struct Attention {
  int64_t n_head = 0;     // Hq (local)
  int64_t n_kv_head = 0;  // Hkv (local)
  int64_t head_dim = 0;   // D
  bool rope = false;
  double rope_theta = 10000.0;
  Linear qkv;   // W [(Hq + 2·Hkv)·D, C] = packed q | k | v weights
  Linear proj;  // W [C, Hq·D] ("attn.out")

  // prefix: "layers.<i>.attn"
  static Attention bind(const ModelConfig& cfg, const ParamStore& store,
                        const std::string& prefix);

  int64_t qkv_dim() const { return (n_head + 2 * n_kv_head) * head_dim; }
  AttentionActs alloc_acts(Backend& be, int64_t B, int64_t T, DType compute) const;
  AttentionScratch alloc_scratch(Backend& be, int64_t B, int64_t T, DType compute) const;

  // x: [N, C] → y: [N, C] (overwritten), N = a.B · a.T.
  void forward(Backend& be, AttentionActs& a, const Tensor& y, const Tensor& x) const;
  // dx: [N, C] overwritten; parameter gradients accumulated.
  void backward(Backend& be, const AttentionActs& a, AttentionScratch& s, const Tensor& dx,
                const Tensor& dy, const Tensor& x) const;
};

}  // namespace llmpi
